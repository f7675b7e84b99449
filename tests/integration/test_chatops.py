"""ChatOps end to end: @opsbot messages on the local stack, against the fake Drone (release links:
test_release_links.py).

Each "done when" item of the ChatOps issue is one test here. Reads are answered in the callback's response;
acts are acknowledged at once and their results are posted into the conversation (the callback's
sessionWebhook on the fake DingTalk), which has no rate limit, so these tests keep off the shop-backend
robot's budget except where the group robot is the point.

The fake Drone is shared by the whole session: tests that count Drone calls reset it first.
"""

from __future__ import annotations

import json
import re
import time

import pytest

SHOP_TOKEN = "local-shop-backend"
API_REPO = "shop/shop-api"
QUIET_PERIOD = 2.0  # long enough for the worker to have made any Drone call it was going to make


def _markdown(response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["msgtype"] == "markdown", body
    return body["markdown"]["text"]


def _texts(messages: list[dict]) -> list[str]:
    return [json.dumps(m, ensure_ascii=False) for m in messages]


def _wait_for_reply(stack, body: dict, timeout: float = 20.0) -> str:
    """The first message the worker posted into the conversation of `body`."""
    found = stack.wait_for(lambda: stack.session_messages(body["sessionWebhook"]), timeout=timeout)
    assert found, f"nothing was posted to the conversation of {body['msgId']}"
    message = found[0]
    assert message["msgtype"] == "markdown", message
    return message["markdown"]["text"]


def _promotes(stack, number: int, target: str | None = None) -> list[dict]:
    calls = stack.drone_calls("POST", f"/api/repos/{API_REPO}/builds/{number}/promote")
    return [c for c in calls if target is None or c["query"].get("target") == [target]]


def _audit(stack, body: dict, who: str, project: str | None = None) -> list[dict]:
    """The audit records of the message `body` (records are keyed by the message's createAt)."""
    return [r for r in stack.audit_records(project) if r["at_ms"] == body["createAt"] and r["who"] == who]


@pytest.fixture
def drone(stack):
    """A fake Drone back at its seeded builds, with no calls recorded and no faults; faults cleared after."""
    stack.drone_reset()
    yield stack
    stack.drone_fault(statuses=[], down=False)


# --- reads -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["@opsbot status shop-api", "status shop-api"])
def test_status_is_answered_at_once_with_the_latest_builds_and_links(drone, text):
    stack = drone
    response, body = stack.chat(text)
    reply = _markdown(response)
    assert "shop-api" in reply
    # the newest build of each branch, with a link to it in Drone
    for number, branch in ((128, "main"), (129, "develop"), (124, "feature/refund")):
        assert re.search(rf"\[#{number}\]\({re.escape(stack.drone)}/shop/shop-api/{number}\)", reply), reply
        assert branch in reply
    assert "feat(order): add refund endpoint" in reply
    # the latest deployment to staging (#126) is listed too; the superseded failure #127 on main is not
    assert "#126" in reply and "staging" in reply
    assert "#127" not in reply
    # a read goes to Drone once, from the callback: nothing is queued and nothing is posted later
    assert not [c for c in stack.drone_calls() if c["method"] != "GET"]
    assert all(c["authorized"] for c in stack.drone_calls())
    time.sleep(0.5)
    assert stack.session_messages(body["sessionWebhook"]) == []
    assert [r["result"] for r in _audit(stack, body, "alice")] == ["answered"]


# --- deploy ------------------------------------------------------------------------------------------


def test_deploy_to_staging_promotes_once_and_posts_the_result_to_the_conversation(drone):
    stack = drone
    robot_before = len(stack.messages(SHOP_TOKEN))
    response, body = stack.chat("部署 shop-api 128 到 staging")
    ack = _markdown(response)
    assert "deploy" in ack and "处理中" in ack  # acknowledged at once, in Chinese like the question

    result = _wait_for_reply(stack, body)
    promotes = _promotes(stack, 128)
    assert len(promotes) == 1, promotes
    assert promotes[0]["query"]["target"] == ["staging"]
    assert promotes[0]["authorized"]
    assert stack.drone_calls("POST") == promotes  # nothing else was started
    started = [
        b
        for b in stack.http.get(
            f"{stack.drone}/api/repos/{API_REPO}/builds",
            headers={"Authorization": "Bearer local-drone-token"},
            timeout=5,
        ).json()
        if b["event"] == "promote" and b["parent"] == 128 and b["deploy_to"] == "staging"
    ]
    assert len(started) == 1
    new = started[0]["number"]
    assert "已开始发布" in result and "shop-api" in result and "#128" in result and "staging" in result
    assert f"[#{new}]({stack.drone}/shop/shop-api/{new})" in result
    assert "Alice Wang" in result

    records = stack.wait_for(
        lambda: [r for r in _audit(stack, body, "alice", "shop-api") if r["result"] == "succeeded"]
    )
    assert records and records[0]["command"] == "deploy"
    assert records[0]["arguments"] == {"project": "shop-api", "build|branch": "128", "env": "staging"}
    # the result goes to the conversation only: the group robot hears nothing about this deploy
    assert not [
        t
        for t in _texts([m["message"] for m in stack.messages(SHOP_TOKEN)[robot_before:]])
        if f"#{new}]" in t or "已开始发布" in t
    ]


def test_the_same_callback_delivered_twice_deploys_once(drone):
    stack = drone
    response, body = stack.chat("deploy shop-api 123 to staging")
    assert "running" in _markdown(response)
    again = stack.post_chat(body)  # DingTalk redelivers the very same body (same msgId)
    assert again.status_code == 200 and again.json() == {"msgtype": "empty"}

    _wait_for_reply(stack, body)
    time.sleep(QUIET_PERIOD)
    assert len(_promotes(stack, 123, "staging")) == 1
    assert len(stack.session_messages(body["sessionWebhook"])) == 1
    assert len(_audit(stack, body, "alice")) == 1


def test_without_a_usable_session_the_result_goes_to_the_projects_group(drone):
    stack = drone
    before = len(stack.messages(SHOP_TOKEN))
    # no sessionWebhook at all (bob may restart: developers can)
    response, _ = stack.chat("重试 shop-api 127", as_person="bob", session=False)
    assert "处理中" in _markdown(response)
    # a session that expires within the minute is not started on
    soon = int(time.time() * 1000) + 30_000
    response, expiring = stack.chat(
        "deploy shop-api 123 to staging", as_person="carol", body_override={"sessionWebhookExpiredTime": soon}
    )
    assert "running" in _markdown(response)

    def posted():
        texts = _texts([m["message"] for m in stack.messages(SHOP_TOKEN)[before:]])
        restarted = [t for t in texts if "已重新运行 shop-api #127" in t]
        deployed = [t for t in texts if "shop-api #123 → staging" in t]
        return (restarted, deployed) if restarted and deployed else None

    found = stack.wait_for(posted)
    assert found, stack.messages(SHOP_TOKEN)[before:]
    assert [len(f) for f in found] == [1, 1]
    assert stack.session_messages(expiring["sessionWebhook"]) == []
    assert len(stack.drone_calls("POST", f"/api/repos/{API_REPO}/builds/127")) == 1  # the restart
    assert len(_promotes(stack, 123, "staging")) == 1


def test_deploy_by_someone_without_the_deployer_role_is_denied_and_audited(drone):
    stack = drone
    response, body = stack.chat("deploy shop-api 128 to staging", as_person="bob")
    reply = _markdown(response)
    assert "⛔" in reply
    assert "deployer" in reply  # the role it needs
    assert "developer" in reply  # and the roles bob has
    time.sleep(QUIET_PERIOD)
    assert stack.drone_calls() == []  # not even a read: the permission check comes first
    assert stack.session_messages(body["sessionWebhook"]) == []
    records = _audit(stack, body, "bob")
    assert [r["result"] for r in records] == ["denied"], records
    assert records[0]["command"] == "deploy" and "deployer" in records[0]["detail"]
    assert [r["result"] for r in _audit(stack, body, "bob", "shop-api")] == ["denied"]


def test_a_stranger_may_read_but_not_deploy(drone):
    stack = drone
    response, _ = stack.chat("whoami", as_person=None)
    assert "not in opsbot's people config" in _markdown(response)
    response, body = stack.chat("deploy shop-api 128 to staging", as_person=None)
    assert "⛔" in _markdown(response)
    time.sleep(0.5)
    assert stack.drone_calls("POST") == []
    records = [r for r in stack.audit_records() if r["at_ms"] == body["createAt"]]
    assert [r["result"] for r in records] == ["denied"]
    assert records[0]["who"] == f"dingtalk:{body['senderId']}"  # no staff id: known by the DingTalk id


def test_production_needs_someone_else_to_approve(drone):
    stack = drone
    response, body = stack.chat("deploy shop-api 128 to production")
    assert "running" in _markdown(response)
    request_text = _wait_for_reply(stack, body)
    match = re.search(r"approve ([0-9a-f]{8})\b", request_text)
    assert match, request_text
    request_id = match.group(1)
    assert "production" in request_text and "#128" in request_text
    time.sleep(0.5)
    assert _promotes(stack, 128) == []

    # the requester cannot approve her own request
    _, own = stack.chat(f"approve {request_id}", as_person="alice")
    refusal = _wait_for_reply(stack, own)
    assert "cannot approve your own request" in refusal or "不能批准自己" in refusal, refusal
    time.sleep(QUIET_PERIOD)
    assert _promotes(stack, 128) == []
    # the core's refusal is audited as a denial (authz: the requester never approves her own request)
    assert [
        r["result"] for r in stack.wait_for(lambda: [r for r in _audit(stack, own, "alice") if r["result"] != "queued"])
    ] == ["denied"]

    # another deployer can, and her approval starts the deploy
    _, approval = stack.chat(f"批准 {request_id}", as_person="carol")
    result = _wait_for_reply(stack, approval)
    promotes = _promotes(stack, 128)
    assert len(promotes) == 1, promotes
    assert promotes[0]["query"]["target"] == ["production"]
    assert "已开始发布" in result and "production" in result and request_id in result
    # approving again after the fact changes nothing
    _, late = stack.chat(f"approve {request_id}", as_person="xiaoming")
    _wait_for_reply(stack, late)
    time.sleep(QUIET_PERIOD)
    assert len(_promotes(stack, 128)) == 1


# --- help and mistakes -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["deplyo shop-api 128 staging", "deplyo shop-api 128", "stauts shop-api"])
def test_a_mistyped_command_gets_a_did_you_mean(drone, text):
    stack = drone
    response, body = stack.chat(text)
    reply = _markdown(response)
    wanted = "status" if text.startswith("stauts") else "deploy"
    assert f"`{wanted}`" in reply, reply
    assert "help" in reply
    assert stack.drone_calls() == []
    assert [r["result"] for r in _audit(stack, body, "alice")] == ["unknown"]


def test_help_lists_every_command_in_the_readers_language(stack):
    from opsbot.chat.commands import all_commands
    from opsbot.chat.commands.help import names

    registry = all_commands()
    assert {"deploy", "status", "approve", "help"} <= set(registry.commands)
    for text, language in (("help", "en"), ("帮助", "zh"), ("", "zh")):  # nothing said: the config's language
        response, _ = stack.chat(text)
        reply = _markdown(response)
        other = "en" if language == "zh" else "zh"
        for cmd in registry.commands.values():
            assert f"- {names(cmd, language)} — {cmd.summary[language]}" in reply, (text, cmd.name)
            assert cmd.summary[other] not in reply, (text, cmd.name)
    chinese = _markdown(stack.chat("帮助")[0])
    assert "`部署` / `deploy`" in chinese and "`回滚` / `rollback`" in chinese and "**发布**" in chinese
    response, _ = stack.chat("help deploy")
    detail = _markdown(response)
    assert "deploy <project> <build|branch> [to] <env>" in detail and "deploy shop-api 128 to staging" in detail
    assert "部署 shop-api 128 到 staging" in _markdown(stack.chat("帮助 部署")[0])


# --- Drone down --------------------------------------------------------------------------------------


def test_drone_down_during_a_deploy_is_reported_as_failed_in_the_conversation(drone):
    stack = drone
    stack.drone_fault(down=True)
    response, body = stack.chat("deploy shop-api 128 to staging")
    assert "running" in _markdown(response)  # the ack does not wait for Drone
    # three attempts, 1 s and 2 s apart with the stack's retry base, then the person is told
    result = _wait_for_reply(stack, body, timeout=30)
    assert "❌" in result and "did not complete" in result and "503" in result, result
    assert "tried 3 times" in result
    stack.drone_fault(down=False)
    # every attempt asked Drone for the build (and got a 503), so none got as far as a promote
    assert len(stack.drone_calls("GET", f"/api/repos/{API_REPO}/builds/128")) == 3
    assert stack.drone_calls("POST") == []
    records = stack.wait_for(lambda: [r for r in _audit(stack, body, "alice") if r["result"] != "queued"])
    assert [r["result"] for r in records] == ["failed"]
    # the job is kept in the dead-letter queue for an operator, not lost; take it out again
    job_id = records[0]["id"]
    parked = stack.wait_for(lambda: stack.take_dead_letters(lambda job: job.get("id") == job_id), timeout=10)
    assert len(parked) == 1 and parked[0]["kind"] == "chat.command"
    time.sleep(QUIET_PERIOD)
    assert len(stack.session_messages(body["sessionWebhook"])) == 1
