"""The GitOps chat commands end to end through the DingTalk function and the worker (moto, the fake GitLab):
`drone init`/`drone sync`, `config history`, `config rollback`, and how subcommands are found and permitted."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
from unit_support import ROOT, dingtalk_event, fixture_json, json_body, sqs_event, to_body

from opsbot.chat.commands import all_commands
from opsbot.config import store

ALICE, BOB, XIAOMING = "alice.wang", "bob.li", "manager4321"  # deployer, developer, ops + admin


@pytest.fixture
def replies(monkeypatch) -> list[dict]:
    """What the worker posts back into the conversation (its session webhook)."""
    found: list[dict] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send_by_session", lambda url, message: found.append(message))
    return found


@pytest.fixture
def chat(aws, handlers, lambda_context, replies):
    """Say `text` as the person with this staff id; returns (the callback's answer, what the worker posted)."""

    def say(text: str, staff_id: str = ALICE) -> tuple[dict, list[str]]:
        message = fixture_json("dingtalk/outgoing_status.json")
        message.update(
            msgId=f"msg-{uuid.uuid4().hex}",
            senderStaffId=staff_id,
            text={"content": f" {text}"},
            sessionWebhookExpiredTime=int(time.time() * 1000) + 3_600_000,
        )
        answer = json_body(handlers.dingtalk_bot.lambda_handler(dingtalk_event(to_body(message)), lambda_context))
        before = len(replies)
        jobs = aws.receive()
        if jobs:
            result = handlers.worker.lambda_handler(sqs_event(jobs), lambda_context)
            assert result["batchItemFailures"] == [], result
            for job in jobs:  # done, as Lambda's event source deletes what did not fail
                aws.sqs.delete_message(QueueUrl=aws.work_queue_url, ReceiptHandle=job["ReceiptHandle"])
        return answer, [r["markdown"]["text"] for r in replies[before:]]

    return say


def merge_requests(fake_gitlab, project: str) -> list[dict]:
    return fake_gitlab.fake.repos[project].merge_requests


def test_drone_init_opens_the_merge_request_and_posts_its_link(gitops_config, fake_gitlab, chat):
    answer, posted = chat("drone init shop-api java")
    assert "`drone init` is running" in answer["markdown"]["text"]
    [request] = merge_requests(fake_gitlab, "shop/shop-api")
    assert posted == [posted[0]] and f"[!1]({request['web_url']})" in posted[0]
    assert "Opened merge request" in posted[0] and "java template (asked for)" in posted[0]
    branch = request["source_branch"]
    assert fake_gitlab.file("shop/shop-api", ".drone.yml", branch) == (
        ROOT / "tests/golden/drone/java.drone.yml"
    ).read_text(encoding="utf-8")


def test_drone_init_in_chinese_with_a_detected_language(gitops_config, fake_gitlab, chat):
    _, posted = chat("流水线 初始化 shop-web")
    assert "已为 shop-web 打开合并请求" in posted[0] and "node 模板（detected from package.json）" in posted[0]


def test_drone_init_twice_gives_the_same_merge_request(gitops_config, fake_gitlab, chat):
    chat("drone init shop-recommend")
    _, posted = chat("drone init shop-recommend")
    assert "already open" in posted[0]
    assert len(merge_requests(fake_gitlab, "shop/shop-recommend")) == 1


def test_drone_init_refuses_to_overwrite_and_names_drone_sync(gitops_config, fake_gitlab, chat):
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": "kind: pipeline\n"}}])
    _, posted = chat("drone init shop-api")
    assert "never overwrites" in posted[0] and "`drone sync shop-api`" in posted[0]
    assert merge_requests(fake_gitlab, "shop/shop-api") == []


def test_drone_sync_when_up_to_date_and_when_not(gitops_config, fake_gitlab, chat):
    golden = (ROOT / "tests/golden/drone/java.drone.yml").read_text(encoding="utf-8")
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": golden}}])
    _, posted = chat("drone sync shop-api")
    assert "matches the java template's output" in posted[0]
    fake_gitlab.fake.push("shop/shop-api", "main", [{"message": "ci", "files": {".drone.yml": golden + "# mine\n"}}])
    _, posted = chat("drone sync shop-api")
    assert "Opened merge request" in posted[0]
    assert "-# mine" in merge_requests(fake_gitlab, "shop/shop-api")[0]["description"]


def test_an_unknown_language_is_a_usage_error(gitops_config, fake_gitlab, chat):
    _, posted = chat("drone init shop-api cobol")
    assert "there is no cobol template" in posted[0] and fake_gitlab.fake.calls == []


def test_drone_init_needs_the_deployer_role(gitops_config, fake_gitlab, chat):
    answer, posted = chat("drone init shop-api", staff_id=BOB)
    assert "needs the role deployer" in answer["markdown"]["text"] and posted == []
    assert fake_gitlab.fake.calls == []


def test_gitlab_down_is_retried_through_the_queue(gitops_config, fake_gitlab, aws, handlers, lambda_context, chat):
    fake_gitlab.fake.down = True
    message = fixture_json("dingtalk/outgoing_status.json")
    message.update(
        msgId="msg-retry",
        senderStaffId=ALICE,
        text={"content": " drone init shop-api"},
        sessionWebhookExpiredTime=int(time.time() * 1000) + 3_600_000,
    )
    handlers.dingtalk_bot.lambda_handler(dingtalk_event(to_body(message)), lambda_context)
    jobs = aws.receive()
    result = handlers.worker.lambda_handler(sqs_event(jobs), lambda_context)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [jobs[0]["MessageId"]]
    assert aws.receive() == []  # hidden for its backoff; now make the retry come at once
    aws.sqs.change_message_visibility(
        QueueUrl=aws.work_queue_url, ReceiptHandle=jobs[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    fake_gitlab.fake.down = False
    result = handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)
    assert result["batchItemFailures"] == []
    assert len(merge_requests(fake_gitlab, "shop/shop-api")) == 1


def test_no_gitlab_section_gets_a_plain_answer(gitops_config, chat):
    documents = store.current_documents()[1]
    for document in documents:
        if document.name == "opsbot.yaml":
            document.data.pop("gitlab")
        else:
            document.data.pop("pipeline", None)
            document.data.pop("review", None)  # both need GitLab, and so do GitOps environments
            for env in (document.data.get("environments") or {}).values():
                env.pop("deploy", None)
    store.save(documents, "no-gitlab")
    _, posted = chat("drone init shop-api")
    assert "not connected to GitLab" in posted[0]


def test_drone_alone_lists_its_subcommands(gitops_config, chat):
    answer, _ = chat("drone")
    assert "drone init <project> [java|node|python]" in answer["markdown"]["text"]
    answer, _ = chat("drone frobnicate")
    assert "There is no `drone frobnicate`" in answer["markdown"]["text"]


# --- config history and rollback ---------------------------------------------------------------------------


def test_config_history_lists_versions_newest_first(gitops_config, chat):
    store.save(store.current_documents()[1], "b" * 40, source="push by bob: config: tweak")
    answer, _ = chat("config history")
    text = answer["markdown"]["text"]
    assert text.index("`bbbbbbbb` push by bob: config: tweak ← current") < text.index(
        f"`{gitops_config.version[:8]}` seed"
    )


def test_config_rollback_restores_a_version_and_is_for_ops(gitops_config, chat):
    documents = store.current_documents()[1]
    web = next(d for d in documents if d.name == "projects/shop-web.yaml")
    web.data["language"] = "zh"
    store.save(documents, "c" * 40, source="push by alice")
    answer, posted = chat(f"config rollback {gitops_config.version[:8]}", staff_id=ALICE)
    assert "needs the role ops" in answer["markdown"]["text"] and store.load().version == "c" * 40
    _, posted = chat(f"配置 回滚 {gitops_config.version[:8]}", staff_id=XIAOMING)
    assert f"配置已回滚到 `{gitops_config.version[:8]}`" in posted[0] and "请同时在仓库里 revert" in posted[0]
    assert store.load().version == gitops_config.version and store.load().projects["shop-web"].language == "en"
    assert store.history()[0].source == "rollback by 王小明"


def test_config_rollback_to_an_unknown_or_ambiguous_version_says_so(gitops_config, chat):
    store.save(store.current_documents()[1], "abcd1" + "0" * 35)
    store.save(store.current_documents()[1], "abcd2" + "0" * 35)
    _, posted = chat("config rollback ffff", staff_id=XIAOMING)
    assert "no saved config version starts with ffff" in posted[0]
    _, posted = chat("config rollback abcd", staff_id=XIAOMING)
    assert "abcd fits 2 versions" in posted[0]


def test_config_of_a_project_shows_its_pipeline(gitops_config, chat):
    answer, _ = chat("config shop-api")
    assert "pipeline: language=java, image=`registry.example.com/shop/shop-api`" in answer["markdown"]["text"]


# --- the registry's subcommands ----------------------------------------------------------------------------


def test_subcommands_are_found_by_parent_and_word_in_either_language():
    registry = all_commands()
    assert registry.resolve("config", ["rollback", "abc"])[0].name == "config rollback"
    assert registry.resolve("配置", ["回滚", "abc"]) == (registry.commands["config rollback"], ["abc"])
    assert registry.resolve("config", ["shop-api"]) == (registry.commands["config"], ["shop-api"])
    assert registry.lookup("drone init").name == "drone init" and registry.lookup("drone nope") is None


def test_help_explains_a_subcommand(gitops_config, chat):
    answer, _ = chat("help config rollback")
    text = answer["markdown"]["text"]
    assert "`config rollback <version>`" in text and "Role: ops" in text


def test_permissions_can_name_a_subcommand(gitops_config):
    from opsbot.authz import core as authz
    from opsbot.authz.actors import Actor
    from opsbot.config.model import Permission

    config = replace(gitops_config, permissions={"config rollback": Permission(roles=("deployer",))})
    verb = all_commands().commands["config rollback"].verb
    alice = Actor("dingtalk", "alice.wang", "Alice Wang", config.person("alice"))
    assert authz.decide(config, alice, verb, authz.Target()).allowed
    assert authz.decide(gitops_config, alice, verb, authz.Target()).denied


def test_a_subcommand_needs_its_parent():
    from opsbot.chat.registry import Command, Registry

    with pytest.raises(ValueError, match="parent"):
        Registry().add(Command(name="nothing here", aliases=(), arguments=(), summary={}, examples=(), run=print))
