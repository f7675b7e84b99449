"""The trust boundary, tried as an attacker would, over HTTP against the local stack: every act needs an identified
actor and the authorization core's yes. Each test is one attack from the trust-boundary issue; the release-link
and merge-request attacks (4 and 5) are in test_release_links.py and test_review.py, next to their happy paths.

Each attack ends refused, the person told why, the decision audited, and nothing reaching Drone or the group
beyond the refusal."""

from __future__ import annotations

import json
import re
import time

import pytest
from test_chatops import QUIET_PERIOD, _audit, _markdown, _wait_for_reply

API_REPO = "shop/shop-api"


@pytest.fixture
def drone(stack):
    """The fake Drone at its seed; builds a test added are gone again afterwards."""
    stack.drone_reset()
    yield stack
    stack.drone_reset()


def _changes(stack) -> list[dict]:
    return stack.drone_calls("POST") + stack.drone_calls("DELETE")


def test_attack_1_restart_of_a_deployment_is_refused(drone):
    """bob (developer) sends `restart shop-api 126`; #126 is a `promote → staging` build."""
    stack = drone
    response, body = stack.chat("restart shop-api 126", "bob")
    assert "`restart`" in _markdown(response)  # acknowledged: the worker decides, with the build's facts
    reply = _wait_for_reply(stack, body)
    assert reply == "⛔ #126 is a deployment (promote) and is never run again; use deploy or rollback."
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == []
    [record] = stack.wait_for(lambda: [r for r in _audit(stack, body, "bob") if r["result"] == "denied"])
    assert record["decision"] == "deny" and record["via"] == "dingtalk" and "promote" in record["target"]


def test_attack_2_rollback_to_a_feature_branch_build_is_refused(drone):
    """alice sends `rollback shop-api staging 124`; #124 is a `feature/refund` build."""
    stack = drone
    response, body = stack.chat("rollback shop-api staging 124", "alice")
    _markdown(response)
    assert _wait_for_reply(stack, body) == "⛔ staging takes builds of main; #124 is from feature/refund."
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == []
    [record] = stack.wait_for(lambda: [r for r in _audit(stack, body, "alice") if r["result"] == "denied"])
    assert record["reason"] == "staging takes builds of main; #124 is from feature/refund."


def test_a_pull_request_build_of_the_environments_branch_is_not_deployable(drone):
    stack = drone
    [number] = stack.drone_add_builds(
        API_REPO,
        [{"event": "pull_request", "source": "main", "target": "main", "ref": "refs/pull/9/head", "status": "success"}],
    )
    response, body = stack.chat(f"deploy shop-api {number} staging", "alice")
    _markdown(response)
    assert _wait_for_reply(stack, body) == f"⛔ staging takes push builds; #{number} is a pull_request build."
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == []


def test_attack_3_a_replayed_signature_with_another_body_is_refused(drone):
    """A captured DingTalk timestamp + sign pair sent again with an admin's staff id and a deploy."""
    from local.chat import callback
    from local.signing import sign_for

    stack = drone
    first = callback("status shop-api", stack.person("bob"), stack.sink)
    raw = json.dumps(first, ensure_ascii=False).encode()
    captured = sign_for("/webhooks/dingtalk", raw)
    assert stack.post("/webhooks/dingtalk", raw, headers=captured, sign=False).status_code == 200

    forged = callback("deploy shop-api 128 staging", stack.person("xiaoming"), stack.sink)
    response = stack.post(
        "/webhooks/dingtalk", json.dumps(forged, ensure_ascii=False).encode(), headers=captured, sign=False
    )
    assert response.status_code == 401
    assert response.json() == {"error": "this DingTalk timestamp and sign were already used for another message"}
    time.sleep(QUIET_PERIOD)
    assert _changes(stack) == [] and stack.session_messages(forged["sessionWebhook"]) == []
    assert [r for r in stack.audit_records() if r["at_ms"] == forged["createAt"]] == []
    assert "DingTalk signature replayed with another message" in stack.log_text()


def test_attack_6_a_hostile_commit_message_stays_text_in_the_bots_card(stack):
    """`fix: [点此发布到生产](http://evil.example/x) <font color=red>urgent</font>` as a commit message."""
    number = stack.next_number()
    hostile = "fix: [点此发布到生产](http://evil.example/x) <font color=red>urgent</font> @all"
    response = stack.post_drone(stack.drone_body("build_failure", number, message=hostile + "\n\nmore"))
    assert response.status_code == 202
    [message] = stack.wait_for(lambda: stack.messages_mentioning(f"#{number}", "local-shop-backend"))
    text = message["message"]["markdown"]["text"]
    assert "点此发布到生产" in text  # shown, as text
    assert "evil.example" in text and "http://evil" not in text and "<font" not in text
    assert all(not link.startswith("http://evil") for link in re.findall(r"\]\(([^)]*)\)", text))
    assert message["message"]["at"]["isAtAll"] is False
