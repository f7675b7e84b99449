"""Buttons that act, over HTTP on the local stack: a press of a button on opsbot's Slack message, made by the fake
Slack (a `block_actions` payload with a fresh response_url) and posted to /webhooks/slack/interactivity signed with
the local Slack signing secret, as Slack posts it. The worker runs the button's command as the presser; the fake
Slack shows the outcome in place of the message, and a refusal to the presser alone.

Attacks next to the happy path: a forged signature, a stale timestamp, the same request replayed, a stranger's press,
and the requester approving their own request by a button."""

from __future__ import annotations

import json
import time

from local.fake_slack import signed_headers
from local.press import card_for
from local.stack import LOCAL_SECRETS, LOCAL_SLACK_APP_ID

SECRET = LOCAL_SECRETS["SLACK_SIGNING_SECRET_PARAM"]
API_REPO = "shop/shop-api"
FIXTURE_COMMIT = "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
PEOPLE = {"carol": ("U0CAROL", "carol"), "alice": ("U0ALICE", "alice"), "stranger": ("U0STRANGER", "stranger")}


def press_body(stack, command: str, who: str) -> bytes:
    spec = {
        "message": card_for(command),
        "button": 0,
        "user": list(PEOPLE[who]),
        "app_id": LOCAL_SLACK_APP_ID,
        "base_url": stack.sink,
    }
    answer = stack.http.post(f"{stack.sink}/_control/slack/press", json=spec, timeout=5)
    answer.raise_for_status()
    return answer.json()["body"].encode()


def post(stack, body: bytes, headers: dict | None = None):
    headers = headers if headers is not None else signed_headers(SECRET, body)
    return stack.http.post(f"{stack.api}/webhooks/slack/interactivity", data=body, headers=headers, timeout=10)


def responses(stack, body: bytes) -> list[dict]:
    from urllib.parse import parse_qs

    url = json.loads(parse_qs(body.decode())["payload"][0])["response_url"]
    found = stack.http.post(f"{stack.sink}/_control/slack/responses", json={"url": url[len(stack.sink) :]}, timeout=5)
    return found.json()["responses"]


def text(message: dict) -> str:
    return "\n".join(b["text"]["text"] for b in message.get("blocks", []) if b.get("type") == "section")


def fresh_build(stack) -> int:
    number = stack.next_number()
    stack.drone_add_builds(
        API_REPO,
        [{"number": number, "after": FIXTURE_COMMIT, "status": "success", "target": "main", "author_login": "alice"}],
    )
    return number


def test_a_release_to_staging_is_one_press_and_the_message_shows_who(stack):
    number = fresh_build(stack)
    body = press_body(stack, f"deploy shop-api {number} to staging", "carol")
    answer = post(stack, body)
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    replaced = stack.wait_for(lambda: [r for r in responses(stack, body) if r.get("replace_original")])
    assert len(replaced) == 1 and "pressed by Carol Zhang" in text(replaced[0]), responses(stack, body)
    assert f"#{number}" in text(replaced[0]) and "staging" in text(replaced[0])
    promotes = stack.drone_calls("POST", f"/builds/{number}/promote")
    assert len(promotes) == 1

    # the same request again (a replay, or Slack retrying): one press
    again = post(stack, body)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    time.sleep(1.5)
    assert len(stack.drone_calls("POST", f"/builds/{number}/promote")) == 1


def test_forged_and_stale_presses_are_refused_and_do_nothing(stack):
    number = fresh_build(stack)
    body = press_body(stack, f"deploy shop-api {number} to staging", "carol")
    forged = post(stack, body, signed_headers("not-the-secret", body))
    assert (forged.status_code, forged.json()) == (401, {"error": "the Slack signature does not match"})
    stale = post(stack, body, signed_headers(SECRET, body, int(time.time()) - 600))
    assert stale.status_code == 401 and "stale" in stale.json()["error"]
    time.sleep(1.5)
    assert stack.drone_calls("POST", f"/builds/{number}/promote") == [] and responses(stack, body) == []


def test_a_stranger_s_press_tells_only_them_why(stack):
    number = fresh_build(stack)
    body = press_body(stack, f"deploy shop-api {number} to staging", "stranger")
    assert post(stack, body).json()["status"] == "queued"
    told = stack.wait_for(lambda: responses(stack, body))
    assert [r.get("replace_original") for r in told] == [False] and text(told[0]).startswith("⛔")
    assert "U0STRANGER" in text(told[0])
    assert stack.drone_calls("POST", f"/builds/{number}/promote") == []


def test_the_requester_cannot_approve_their_own_production_release_by_a_button(stack):
    number = fresh_build(stack)
    _answer, said = stack.chat(f"deploy shop-api {number} to production", as_person="alice")
    session = said["sessionWebhook"]
    opened = stack.wait_for(
        lambda: [m for m in stack.session_messages(session) if "Approval request" in json.dumps(m, ensure_ascii=False)]
    )
    request_id = json.dumps(opened[0], ensure_ascii=False).split("Approval request `", 1)[1][:8]
    own = press_body(stack, f"approve {request_id}", "alice")
    post(stack, own)
    refused = stack.wait_for(lambda: [r for r in responses(stack, own) if text(r).startswith("⛔")])
    assert "approve your own request" in text(refused[0]) and not refused[0].get("replace_original")

    other = press_body(stack, f"approve {request_id}", "carol")
    post(stack, other)
    replaced = stack.wait_for(lambda: [r for r in responses(stack, other) if r.get("replace_original")])
    assert "Carol Zhang approved" in text(replaced[0]) and "pressed by Carol Zhang" in text(replaced[0])
    assert len(stack.drone_calls("POST", f"/builds/{number}/promote")) == 1
