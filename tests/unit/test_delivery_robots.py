"""A project with several robots (the example's shop-recommend: DingTalk and Feishu): each robot is told on its own
and exactly once, a failing one is retried alone, and one that refuses is parked with its name while the others
still hear. Robot kinds in config: each kind's keys, checked with file and line."""

from __future__ import annotations

import copy

import pytest
from unit_support import fixture_json

from opsbot.config.model import ConfigError, Document, validate
from opsbot.delivery.post import post
from opsbot.jobs.model import Job, PermanentFailure, RetryLater
from opsbot.message import Conversation, Reply
from opsbot.notify.jobs import notify_build_finished


@pytest.fixture
def dingtalk_sent(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: calls.append((robot.name, message)))
    return calls


def failure_job(number: int = 301) -> Job:
    delivery = copy.deepcopy(fixture_json("drone/build_failure.json"))
    delivery["repo"].update(slug="shop/shop-recommend", name="shop-recommend")
    delivery["build"]["number"] = number
    return Job(kind="drone.build_finished", payload=delivery, id=f"build-{number}")


def test_a_failure_is_told_once_to_each_of_the_projects_robots(example_config, fake_dingtalk, dingtalk_sent):
    job = failure_job()
    assert notify_build_finished(job) == "shop-backend: sent, shop-feishu: sent"
    assert notify_build_finished(job) == "already notified"  # SQS delivered the job twice
    [(robot, card)] = dingtalk_sent
    assert robot == "shop-backend" and "shop-recommend #301" in card["markdown"]["title"]
    [feishu] = fake_dingtalk.feishu.accepted
    assert feishu["name"] == "shop-feishu" and feishu["message"]["msg_type"] == "interactive"
    assert "shop-recommend #301" in feishu["message"]["card"]["header"]["title"]["content"]
    assert "<at id=ou_alice0local></at>" in feishu["message"]["card"]["elements"][0]["text"]["content"]


def test_a_robot_that_fails_is_retried_alone(example_config, fake_dingtalk, dingtalk_sent):
    fake_dingtalk.feishu.scripted["local-shop-feishu"] = [503]
    job = failure_job(302)
    with pytest.raises(RetryLater) as raised:
        notify_build_finished(job)
    assert raised.value.reason == "robot shop-feishu: HTTP 503"
    assert len(dingtalk_sent) == 1 and fake_dingtalk.feishu.accepted == []
    assert notify_build_finished(job) == "shop-backend: sent, shop-feishu: sent"  # the retry
    assert len(dingtalk_sent) == 1 and len(fake_dingtalk.feishu.accepted) == 1


def test_a_robot_that_refuses_is_parked_by_name_while_the_others_hear(example_config, fake_dingtalk, dingtalk_sent):
    """The Feishu group's admin reset the bot's secret: its sends fail for good, DingTalk's group still hears."""
    fake = fake_dingtalk.feishu
    name, secret = fake.robots["local-shop-feishu"]
    fake.robots["local-shop-feishu"] = (name, "a-new-secret-opsbot-does-not-have")
    try:
        with pytest.raises(PermanentFailure) as raised:
            notify_build_finished(failure_job(303))
    finally:
        fake.robots["local-shop-feishu"] = (name, secret)
    assert raised.value.reason.startswith("robot shop-feishu: Feishu code 19021")
    assert len(dingtalk_sent) == 1 and fake.accepted == []


def test_sends_cut_off_at_both_robots_park_the_job_naming_both_effects(example_config, fake_dingtalk, monkeypatch):
    """Both chats took the message and lost the answer: neither is sent again, and the parked job names both
    effects, so that a redrive (after someone looked in the groups) retakes each of them."""
    import requests

    from opsbot.state import effects

    def lost(*args, **kwargs):
        raise requests.ReadTimeout("read timed out")

    monkeypatch.setattr("opsbot.channels.http._http", lambda: type("S", (), {"post": staticmethod(lost)})())
    job = failure_job(304)
    with pytest.raises(effects.EffectInDoubt) as raised:
        notify_build_finished(job)
    assert raised.value.keys == (f"notified#{job.id}", f"notified#{job.id}#shop-feishu")
    assert "shop-backend" in raised.value.reason and "shop-feishu" in raised.value.reason


def test_a_reply_whose_session_expired_goes_to_each_robot_once(example_config, fake_dingtalk, dingtalk_sent):
    reply = Reply(title="drone init", text="### ✅ merge request opened", project="shop-recommend")
    expired = Conversation("dingtalk", "cid", "group", f"{fake_dingtalk.url}/robot/sendBySession?session=x", 1)
    assert post(example_config, reply, expired, "job-9") == "robot shop-backend: sent; robot shop-feishu: sent"
    assert post(example_config, reply, expired, "job-9") == "robot shop-backend: sent; robot shop-feishu: sent"
    assert len(dingtalk_sent) == 1 and len(fake_dingtalk.feishu.accepted) == 1  # the retry posted nothing again
    assert fake_dingtalk.accepted == []  # nothing went to the expired session


# --- config: robot kinds ----------------------------------------------------------------------------------------


def documents(robots: dict, project: dict | None = None) -> list[Document]:
    return [
        Document("opsbot.yaml", {"robots": robots}),
        Document("projects/api.yaml", project or {"repo": "shop/api", "robot": next(iter(robots))}),
    ]


def problems(robots: dict, project: dict | None = None, stage: str = "") -> list[str]:
    with pytest.raises(ConfigError) as raised:
        validate(documents(robots, project), allow_literal_secrets=not stage, stage=stage)
    return raised.value.lines()


def test_every_kind_with_its_keys_is_valid():
    config = validate(
        documents(
            {
                "ding": {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=t", "secret": "SEC1"},
                "fei": {"kind": "feishu", "webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/x", "secret": "s"},
                "wx": {"kind": "wecom", "webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
                "sl": {
                    "kind": "slack",
                    "webhook": "https://hooks.slack.com/services/T/B/x",
                    "rate_limit_per_minute": 30,
                },
                "mail": {"kind": "email", "from": "ops@example.com", "to": ["a@example.com"], "region": "eu-west-1"},
            },
            {"repo": "shop/api", "robots": ["ding", "fei", "wx", "sl", "mail"]},
        ),
        allow_literal_secrets=True,
    )
    assert {r.name: r.kind for r in config.robots.values()} == {
        "ding": "dingtalk",
        "fei": "feishu",
        "wx": "wecom",
        "sl": "slack",
        "mail": "email",
    }
    assert config.robots["fei"].rate_limit_per_minute == 100 and config.robots["wx"].rate_limit_per_minute == 20
    assert config.robots["mail"].recipients == ("a@example.com",) and config.robots["mail"].region == "eu-west-1"
    assert config.projects["api"].robots == ("ding", "fei", "wx", "sl", "mail")
    assert config.projects["api"].robot == "ding"


@pytest.mark.parametrize(
    "robot, expected",
    [
        (
            {"kind": "teams", "webhook": "w"},
            "opsbot.yaml: robots.x.kind must be one of dingtalk, feishu, wecom, slack, email",
        ),
        ({"kind": "feishu", "webhook": "w"}, "robots.x: 'secret' is required"),
        ({"kind": "wecom", "webhook": "w", "secret": "s"}, "robots.x (wecom): unknown key 'secret'"),
        (
            {"kind": "slack", "webhook": "w", "rate_limit_per_minute": 61},
            "robots.x.rate_limit_per_minute must be a whole number from 1 to 60",
        ),
        ({"kind": "email", "from": "ops@example.com", "region": "us-east-1"}, "robots.x: 'to' is required"),
        (
            {"kind": "email", "from": "ops", "to": ["a@example.com"], "region": "us-east-1"},
            "robots.x.from 'ops' is not an e-mail address",
        ),
        (
            {"kind": "email", "from": "o@example.com", "to": ["a@x"], "region": "us-east-1"},
            "robots.x.to: 'a@x' is not an e-mail address",
        ),
        (
            {"kind": "email", "from": "o@example.com", "to": ["a@example.com"], "region": "mars"},
            "robots.x.region 'mars' is not an AWS region",
        ),
        ({"kind": "email", "from": "o@example.com", "to": ["a@example.com"]}, "robots.x: 'region' is required"),
    ],
)
def test_each_kind_is_checked_for_its_own_keys(robot, expected):
    assert any(expected in line for line in problems({"x": robot})), problems({"x": robot})


def test_wecom_and_slack_webhooks_are_secrets_under_the_robots_area():
    robots = {"x": {"kind": "wecom", "webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}}
    assert any("robots.x.webhook is a secret: write it as ssm:" in p for p in problems(robots, stage="prod"))
    robots = {"x": {"kind": "slack", "webhook": "ssm:/opsbot/prod/gitlab/slack"}}
    assert any("must be a parameter under /opsbot/prod/robots/" in p for p in problems(robots, stage="prod"))
    fine = {"x": {"kind": "slack", "webhook": "ssm:/opsbot/prod/robots/x/webhook"}}
    assert validate(documents(fine), allow_literal_secrets=False, stage="prod").robots["x"].kind == "slack"


def test_a_projects_robots_are_checked_with_file_and_line():
    robots = {"a": {"webhook": "w", "secret": "s"}}
    assert "projects/api.yaml: project.robots 'ghost' is not defined under robots" in problems(
        robots, {"repo": "shop/api", "robots": ["a", "ghost"]}
    )
    assert any(
        "name its robots with either 'robot' or 'robots', not both" in p
        for p in problems(robots, {"repo": "shop/api", "robot": "a", "robots": ["a"]})
    )
    assert any("project: 'robot' (or 'robots') is required" in p for p in problems(robots, {"repo": "shop/api"}))
    assert any(
        "project.robots names a robot twice" in p for p in problems(robots, {"repo": "shop/api", "robots": ["a", "a"]})
    )


# --- what older jobs and records hold -----------------------------------------------------------------------------


def test_a_reply_stored_before_mentions_named_people_still_mentions_on_dingtalk(example_config):
    """state.effects keeps a Reply's dict; one written before mentions named people holds DingTalk's handles."""
    from opsbot.channels import dingtalk

    stored = {
        "title": "deploy",
        "text": "### ✅ done",
        "ok": True,
        "project": "shop-api",
        "user_ids": ["u1"],
        "mobiles": [],
    }
    reply = Reply.from_dict(stored)
    body = dingtalk.render(reply.as_message(), example_config.person)
    assert body["at"] == {"atMobiles": [], "atUserIds": ["u1"], "isAtAll": False}
    assert Reply.from_dict(reply.as_dict()).mentions.stored_user_ids == ["u1"]  # and kept when stored again


def test_a_chat_job_queued_before_there_were_channels_is_read_as_dingtalks(example_config, fake_dingtalk):
    from opsbot.chat import inbound

    fields = {
        "msgId": "msg-old",
        "senderStaffId": "alice.wang",
        "senderNick": "Alice Wang",
        "conversationId": "cid",
        "conversationTitle": "商城后端研发群",
        "sessionWebhook": f"{fake_dingtalk.url}/robot/sendBySession?session=local-session-1",
        "sessionWebhookExpiredTime": 4_102_444_800_000,
    }
    said = inbound.from_job(example_config, {"message": fields, "command": "deploy"})  # no "channel": an older job
    assert (said.channel, said.msg_id, said.actor.id) == ("dingtalk", "msg-old", "alice")
    assert said.conversation.open_reply_url() == fields["sessionWebhook"]
    evil = dict(fields, sessionWebhook="https://evil.example/robot/sendBySession?session=x")
    assert (
        inbound.from_job(example_config, {"channel": "dingtalk", "message": evil}).conversation.open_reply_url() == ""
    )
