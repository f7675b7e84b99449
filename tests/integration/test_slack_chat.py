"""Slack as a way in, over HTTP on the local stack: a person @-mentions the app's bot in the fake Slack, which hands
back the `app_mention` event_callback; it is posted to /webhooks/slack/events signed with the local Slack signing
secret (v0), as Slack posts it. The worker answers it in the message's thread through the fake Slack Web API
(`chat.postMessage` with the local bot token). Attacks next to the happy path: a forged signature, Slack's retry of
the same event, a stranger, and the bot's own message."""

from __future__ import annotations

import json
import time

from local.fake_slack import BOT_USER, signed_headers
from local.stack import LOCAL_SECRETS

SECRET = LOCAL_SECRETS["SLACK_SIGNING_SECRET_PARAM"]
API_REPO = "shop/shop-api"
FIXTURE_COMMIT = "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"


def say(stack, user: str, text: str) -> dict:
    answer = stack.http.post(f"{stack.sink}/_control/slack/say", json={"user": user, "text": text}, timeout=5)
    answer.raise_for_status()
    return json.loads(answer.json()["body"])


def post(stack, document: dict, secret: str = SECRET, extra: dict | None = None):
    body = json.dumps(document).encode()
    headers = {**signed_headers(secret, body), "Content-Type": "application/json", **(extra or {})}
    return stack.http.post(f"{stack.api}/webhooks/slack/events", data=body, headers=headers, timeout=10)


def in_thread(stack, document: dict) -> list[dict]:
    posted = stack.http.get(f"{stack.sink}/_control/slack/posted", timeout=5).json()["posted"]
    return [m for m in posted if m.get("thread_ts") == document["event"]["ts"]]


def text(message: dict) -> str:
    return "\n".join(b["text"]["text"] for b in message.get("blocks", []) if b.get("type") == "section")


def test_a_release_typed_in_slack_is_acknowledged_done_once_and_answered_in_its_thread(stack):
    number = stack.next_number()
    stack.drone_add_builds(
        API_REPO,
        [{"number": number, "after": FIXTURE_COMMIT, "status": "success", "target": "main", "author_login": "alice"}],
    )
    document = say(stack, "U0CAROL", f"deploy shop-api {number} to staging")
    answer = post(stack, document)
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    replies = stack.wait_for(lambda: (found := in_thread(stack, document)) and len(found) >= 2 and found)
    assert "deploy" in text(replies[0]) and f"#{number}" in text(replies[1]) and "staging" in text(replies[1])
    assert len(stack.drone_calls("POST", f"/builds/{number}/promote")) == 1

    # Slack's retry of the same event (its answer was late): one job, one act
    again = post(stack, document, extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    time.sleep(1.5)
    assert len(stack.drone_calls("POST", f"/builds/{number}/promote")) == 1


def test_a_forged_signature_a_stranger_and_the_bot_itself_act_on_nothing(stack):
    forged = say(stack, "U0CAROL", "deploy shop-api 128 to staging")
    answer = post(stack, forged, secret="not-the-signing-secret")
    assert answer.status_code == 401 and answer.json() == {"error": "the Slack signature does not match"}

    stranger = say(stack, "U0STRANGER", "deploy shop-api 128 to staging")
    assert post(stack, stranger).json()["status"] == "queued"
    [refusal] = stack.wait_for(lambda: in_thread(stack, stranger))
    assert text(refusal).startswith("⛔")

    own = say(stack, BOT_USER, "deploy shop-api 128 to staging")
    own["event"]["bot_id"] = "B0OPSBOT"
    answer = post(stack, own)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
