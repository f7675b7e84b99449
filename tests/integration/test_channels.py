"""Every channel through the local stack: a build failure for shop-recommend reaches its DingTalk and its Feishu
group, signed and rendered; and for Feishu, WeCom, Slack and e-mail each: a burst of 60 builds in a minute all
delivered within the channel's limits, the channel failing twice then working delivered once (DingTalk's own are
in test_rate_limit.py and test_drone_to_dingtalk.py); and for every channel, DingTalk's too: a reset secret
parked with a reason naming the robot, and an over-size message summarised to the channel's size.

The fakes (local/fake_feishu.py, fake_wecom.py, fake_slack.py, and SES on moto behind local/fake_ses.py) check
signatures and limits and answer their channel's real error codes; e-mail is read back through moto's API."""

from __future__ import annotations

import json
import re
import time

import boto3
import pytest
from conftest import CHANNELS, robot_key

from opsbot.channels.http import encode

QUIET_PERIOD = 2.0
# What each channel's fake answers when a robot sends too fast (the budget should never let it).
RATE_LIMITED = {"feishu": "11232", "wecom": "45009", "slack": "429", "email": "Throttling"}
# The channel's limits as its fake counts them: (messages, seconds).
LIMITS = {
    "feishu": ((5, 1.0), (100, 60.0)),
    "wecom": ((20, 60.0),),
    "slack": ((1, 1.0),),
    "email": ((1, 1.0),),
}


def text_of(kind: str, message: dict) -> str:
    """What a channel's fake received, as one text to search."""
    return json.dumps(message["message"], ensure_ascii=False)


def arrived(stack, kind: str, role: str) -> list[dict]:
    if kind == "dingtalk":
        return stack.messages(robot_key(kind, role))
    return stack.channel_messages(kind, robot_key(kind, role))


def mentioning(stack, kind: str, role: str, needle: str) -> list[dict]:
    return [m for m in arrived(stack, kind, role) if needle in text_of(kind, m)]


def test_a_failure_reaches_the_dingtalk_and_the_feishu_group_signed_and_rendered(stack):
    number = stack.next_number()
    response = stack.post_drone(stack.drone_body("build_failure", number, repo="shop-recommend"))
    assert response.status_code == 202, response.text
    title = f"shop-recommend #{number}"
    assert stack.wait_for(lambda: stack.messages_mentioning(title, "local-shop-backend"))
    assert stack.wait_for(
        lambda: [m for m in stack.channel_messages("feishu", "local-shop-feishu") if title in text_of("feishu", m)]
    )
    time.sleep(QUIET_PERIOD)

    [ding] = stack.messages_mentioning(title, "local-shop-backend")  # its sign checked by the fake DingTalk
    text = ding["message"]["markdown"]["text"]
    assert "构建失败" in text and "default › test" in text and "**作者**: Alice Wang @alice.wang" in text
    assert ding["message"]["at"]["atUserIds"] == ["alice.wang"]

    [fei] = [m for m in stack.channel_messages("feishu", "local-shop-feishu") if title in text_of("feishu", m)]
    body = fei["message"]  # accepted only with a valid sign over a timestamp in seconds
    assert len(body["timestamp"]) == 10 and body["sign"] and body["msg_type"] == "interactive"
    header, elements = body["card"]["header"], body["card"]["elements"]
    assert header["template"] == "red" and header["title"]["content"] == f"❌ 构建失败 · {title}"
    content = elements[0]["text"]["content"]
    assert "**失败步骤**: default › test" in content and "**作者**: Alice Wang <at id=ou_alice0local></at>" in content
    assert f"[查看构建](https://drone.example.com/shop/shop-recommend/{number})" in content


def within(times: list[float], count: int, seconds: float) -> bool:
    """No span of `seconds` holds more than `count` of these arrival times."""
    times = sorted(times)
    return all(len([t for t in times[i:] if t < start + seconds]) <= count for i, start in enumerate(times))


@pytest.mark.parametrize("kind", CHANNELS)
def test_sixty_builds_in_a_minute_all_arrive_within_the_channels_limits(stack, kind):
    numbers = [stack.next_number() for _ in range(60)]
    started = time.monotonic()
    for number in numbers:
        response = stack.post_drone(stack.drone_body("build_failure", number, repo=f"{kind}-burst-api"))
        assert response.status_code == 202, response.text
    assert time.monotonic() - started < 60, "the burst itself must fit in one minute"

    def all_delivered():
        if kind == "email":  # read back through moto's SES
            text = " ".join(
                m["subject"] + m["body"] for m in stack.ses_messages() if m["source"].startswith("email-burst")
            )
        else:
            text = " ".join(text_of(kind, m) for m in arrived(stack, kind, "burst"))
        return all(re.search(rf"#{n}(?!\d)", text) for n in numbers)

    # WeCom's 20 a minute: the first 20 at once, the rest about a minute later as digests (split to 4,096 bytes).
    assert stack.wait_for(all_delivered, timeout=180, interval=1.0), f"some builds never reached the {kind} group"
    key = robot_key(kind, "burst")
    assert [r for r in stack.channel_rejections(kind, key) if r["reason"].startswith(RATE_LIMITED[kind])] == []
    times = [m["at"] for m in arrived(stack, kind, "burst")]
    assert all(within(times, count, seconds) for count, seconds in LIMITS[kind])
    if kind != "feishu":  # Feishu's 5 a second may take a slow worker's builds one by one
        assert len(times) < 60, "a burst should be folded into digests, not sent one by one"


@pytest.mark.parametrize("kind", CHANNELS)
def test_the_channel_failing_twice_then_working_delivers_once(stack, kind):
    key = robot_key(kind, "flaky")
    stack.channel_fault(kind, key, statuses=[503, 503] if kind == "email" else [500, 500])
    number = stack.next_number()
    assert stack.post_drone(stack.drone_body("build_failure", number, repo=f"{kind}-flaky-api")).status_code == 202
    needle = f"/shop/{kind}-flaky-api/{number}"  # the build's link, in its card or in a digest's line
    assert stack.wait_for(lambda: mentioning(stack, kind, "flaky", needle), timeout=40), "never delivered"
    time.sleep(QUIET_PERIOD)
    assert len(mentioning(stack, kind, "flaky", needle)) == 1
    assert [r["status"] for r in stack.channel_rejections(kind, key)][-2:] == (
        [503, 503] if kind == "email" else [500, 500]
    )
    if kind == "email":
        assert len([m for m in stack.ses_messages() if needle in m["body"]]) == 1


def _reset_secret(stack, kind: str):
    """The group's admin resets the robot (its secret, its key, its URL; for e-mail the identity is no longer
    verified). Returns how to put it back."""
    key = robot_key(kind, "bad")
    if kind == "dingtalk":
        rotate = f"{stack.sink}/_control/rotate"
        stack.http.post(rotate, json={"access_token": key, "secret": "SEC-reset-in-the-group"}, timeout=5)
        return lambda: stack.http.post(rotate, json={"access_token": key, "secret": "SEC-local-bad-secret"}, timeout=5)
    if kind == "feishu":
        stack.channel_rotate(kind, key, secret="a-secret-opsbot-does-not-have")
        return lambda: stack.channel_rotate(kind, key, secret="feishu-bad-secret")
    if kind in ("wecom", "slack"):
        moved = key + "-regenerated"
        stack.channel_rotate(kind, key, to=moved)
        return lambda: stack.channel_rotate(kind, moved, to=key)
    ses = boto3.client(
        "ses",
        region_name="us-east-1",
        endpoint_url=stack.moto,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    ses.delete_identity(Identity=key)
    return lambda: ses.verify_email_identity(EmailAddress=key)


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("dingtalk", "robot bad: errcode 310000 sign not match"),
        ("feishu", "robot feishu-bad: Feishu code 19021 sign match fail"),
        ("wecom", "robot wecom-bad: WeCom errcode 93000 invalid webhook url"),
        ("slack", "robot slack-bad: Slack HTTP 403 invalid_token"),
        ("email", "robot email-bad: SES MessageRejected: Email address not verified email-bad@opsbot.example"),
    ],
)
def test_a_reset_secret_parks_the_job_with_a_reason_naming_the_robot(stack, kind, reason):
    put_back = _reset_secret(stack, kind)
    try:
        number = stack.next_number()
        repo = "bad-api" if kind == "dingtalk" else f"{kind}-bad-api"
        assert stack.post_drone(stack.drone_body("build_failure", number, repo=repo)).status_code == 202

        def parked():
            return stack.take_parked(
                lambda job: job["kind"] == "drone.build_finished" and job["payload"]["build"]["number"] == number
            )

        [(job, why)] = stack.wait_for(parked, timeout=30, interval=0.5)
        assert why.startswith(reason), why
        assert mentioning(stack, kind, "bad", f"/shop/{repo}/{number}") == []
    finally:
        put_back()


def _switch_ops_robot(stack, robot: str) -> dict:
    """Push opsbot.yaml with `settings.ops_robot: robot` and wait until it is synced; the hook."""
    current = stack.gitlab_file(stack.config_repo, "opsbot.yaml")
    changed = re.sub(r"ops_robot: \S+", f"ops_robot: {robot}", current)
    hook = stack.push({"opsbot.yaml": changed}, message=f"config: ops robot {robot}")
    assert stack.post_gitlab(hook).status_code == 202
    assert stack.wait_for(lambda: stack.config_versions()[0] == hook["after"]), "not synced"
    return hook


def _told_synced(stack, kind: str, hook: dict) -> None:
    """The new ops robot hears of its own sync first; the next message waits out its 1-a-second budget (Slack's and
    SES's), so that it is sent on its own rather than folded into a digest."""
    assert stack.wait_for(lambda: mentioning(stack, kind, "ops", hook["after"][:8]), timeout=30), "no sync notice"
    time.sleep(1.5)


# 200 problems of about 300 characters each, in Chinese: far over any chat's size, over e-mail's 100 KB too.
BROKEN = "repo: shop/oversize-api\nrobot: shop-backend\n" + "".join(
    f"未知的键{i:03d}{'很长' * 140}: 1\n" for i in range(200)
)
SIZES = {
    "dingtalk": lambda m: len(encode(m["message"])) <= 20_000,
    "feishu": lambda m: len(json.dumps(m["message"], ensure_ascii=False, separators=(",", ":")).encode()) <= 20_000,
    "wecom": lambda m: len(m["message"]["markdown"]["content"].encode()) <= 4096,
    "slack": lambda m: sum(len(b["text"]["text"]) for b in m["message"]["blocks"] if b["type"] == "section") <= 4000,
    "email": lambda m: len(m["message"]["html"].encode()) + len(m["message"]["text"].encode()) <= 100_000,
}


@pytest.mark.parametrize("kind", ("dingtalk", *CHANNELS))
def test_an_over_size_message_is_summarised_to_the_channels_size(stack, kind):
    original = stack.gitlab_file(stack.config_repo, "opsbot.yaml")
    switched = _switch_ops_robot(stack, "ops" if kind == "dingtalk" else f"{kind}-ops")
    try:
        _told_synced(stack, kind, switched)
        broken = stack.push({"projects/oversize-api.yaml": BROKEN}, message="config: a file with 200 problems")
        assert stack.post_gitlab(broken).status_code == 202
        needle = broken["after"][:8]
        [told] = stack.wait_for(lambda: mentioning(stack, kind, "ops", needle), timeout=30)
        text = text_of(kind, told)
        assert "200 处错误" in text or "200 problem(s)" in text
        hidden = int(re.search(r"还有 (\d+) 行，未显示", text).group(1))
        assert 0 < hidden < 200 and "projects/oversize-api.yaml:3" in text
        assert SIZES[kind](told)
        if kind == "dingtalk":
            assert [r for r in stack.rejections() if r["access_token"] == robot_key(kind, "ops")] == []
        else:
            assert stack.channel_rejections(kind, robot_key(kind, "ops")) == []
    finally:
        fix = stack.push({"opsbot.yaml": original, "projects/oversize-api.yaml": None}, message="config: put back")
        assert stack.post_gitlab(fix).status_code == 202
        assert stack.wait_for(lambda: stack.config_versions()[0] == fix["after"]), "the config was not put back"
