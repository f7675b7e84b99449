"""Slack as a way in for typed commands: the Events API's `app_mention` and direct `message.im` posted to
/webhooks/slack/events as Slack posts them (JSON, v0 signature, checked where presses are), `url_verification`
answered, queued once per `event_id`; the worker refuses a message too old by its own `ts`, maps the sender by
`slack_user_id`, answers through chat.ingress as DingTalk's and Feishu's messages are, and posts the answer into the
message's thread with `chat.postMessage` and the bot token (the fake Slack Web API's). Each happy path has its
attacks next to it."""

from __future__ import annotations

import json
import time

import pytest
from chat_support import audit_log
from unit_support import SLACK_APP_ID, SLACK_SIGNING_SECRET, http_event, json_body, sqs_event

from local.fake_slack import BOT_USER, signed_headers

PATH = "/webhooks/slack/events"
CAROL, BOB, STRANGER = "U0CAROL", "U0BOB", "U0NOBODY"


@pytest.fixture
def slack(chat_config, fake_dingtalk, env):
    """The fake Slack (its Web API on the sink), with the stack set up for the Slack app's events."""
    env("SLACK_APP_ID", SLACK_APP_ID)
    env("SLACK_API_URL", f"{fake_dingtalk.url}/api")
    env("SLACK_RESPONSE_URL_PREFIX", f"{fake_dingtalk.url}/actions/")
    return fake_dingtalk.slack


class Stack:
    def __init__(self, aws, handlers, lambda_context, slack):
        self.aws, self.handlers, self.context, self.slack = aws, handlers, lambda_context, slack
        self.done: set[str] = set()

    def post(self, document: dict, headers: dict | None = None, body: bytes | None = None) -> tuple[int, dict]:
        body = body if body is not None else json.dumps(document).encode()
        headers = headers if headers is not None else json_headers(body)
        event = http_event(PATH, body, headers, content_type=headers.get("Content-Type"))
        response = self.handlers.slack_bot.lambda_handler(event, self.context)
        return response["statusCode"], json_body(response)

    def say(self, user: str, text: str, channel: str = "C0SHOP", **kwargs) -> tuple[int, dict, dict]:
        with self.slack.lock:
            document = self.slack.say(user, text, channel, **kwargs)
        return (*self.post(document), document)

    def new_jobs(self) -> list[dict]:
        return [m for m in self.aws.receive(visibility=0) if m["MessageId"] not in self.done]

    def work(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            messages = self.new_jobs()
            if not messages:
                return
            self.done.update(m["MessageId"] for m in messages)
            response = self.handlers.worker.lambda_handler(sqs_event(messages), self.context)
            assert response["batchItemFailures"] == []

    def posted(self) -> list[dict]:
        return list(self.slack.posted)


def json_headers(body: bytes, secret: str = SLACK_SIGNING_SECRET, timestamp: int | None = None) -> dict:
    return {**signed_headers(secret, body, timestamp), "Content-Type": "application/json"}


@pytest.fixture
def stack(aws, handlers, lambda_context, slack) -> Stack:
    return Stack(aws, handlers, lambda_context, slack)


def text_of(message: dict) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def drone_changes(fake_drone) -> list[tuple[str, str]]:
    return [(c["method"], c["path"]) for c in fake_drone.calls if c["method"] != "GET"]


# --- the handshake ----------------------------------------------------------------------------------------------


def test_the_url_check_is_answered_with_its_challenge_when_signed(stack):
    check = {
        "token": "x",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    assert stack.post(check) == (200, {"challenge": check["challenge"]})
    body = json.dumps(check).encode()
    assert stack.post(check, json_headers(body, "not-the-signing-secret"))[0] == 401


# --- a typed command, answered in its thread ----------------------------------------------------------------------


def test_a_mention_is_queued_and_answered_in_its_thread_through_the_web_api(stack):
    status, answer, document = stack.say(CAROL, "status shop-api")
    assert status == 200 and answer["status"] == "queued"
    stack.work()
    [reply] = stack.posted()
    assert reply["channel"] == "C0SHOP" and reply["thread_ts"] == document["event"]["ts"]
    assert "shop-api" in text_of(reply)
    [record] = [r for r in audit_log() if r.command == "status"]
    assert record.who == "carol" and record.result == "answered"


def test_a_direct_message_is_a_command_too(stack):
    status, answer, _ = stack.say(CAROL, "whoami", channel="D0CAROL")
    assert (status, answer["status"]) == (200, "queued")
    stack.work()
    [reply] = stack.posted()
    assert reply["channel"] == "D0CAROL" and "carol" in text_of(reply).lower()


def test_an_act_is_acknowledged_then_done_once_and_its_result_follows_in_the_thread(stack, fake_drone):
    _, _, document = stack.say(CAROL, "deploy shop-api 128 to staging")
    stack.work()
    assert drone_changes(fake_drone) == [("POST", "/api/repos/shop/shop-api/builds/128/promote")]
    replies = stack.posted()
    assert len(replies) == 2 and {r["thread_ts"] for r in replies} == {document["event"]["ts"]}
    assert "deploy" in text_of(replies[0]) and "staging" in text_of(replies[1])


def test_a_reply_in_a_thread_stays_in_that_thread(stack):
    stack.say(CAROL, "status shop-api", thread_ts="1700000000.000100")
    stack.work()
    assert stack.posted()[0]["thread_ts"] == "1700000000.000100"


# --- attacks -----------------------------------------------------------------------------------------------------


def test_a_forged_or_missing_signature_is_refused_and_queues_nothing(stack):
    with stack.slack.lock:
        document = stack.slack.say(CAROL, "deploy shop-api 128 to staging")
    body = json.dumps(document).encode()
    assert stack.post(document, json_headers(body, "not-the-signing-secret")) == (
        401,
        {"error": "the Slack signature does not match"},
    )
    assert stack.post(document, {"Content-Type": "application/json"})[0] == 401
    signed = json_headers(body)
    assert stack.post(document, signed, body.replace(CAROL.encode(), b"U0ALICE"))[0] == 401  # changed after signing
    assert stack.new_jobs() == []


def test_a_stale_request_is_refused_even_when_signed(stack):
    with stack.slack.lock:
        document = stack.slack.say(CAROL, "deploy shop-api 128 to staging")
    body = json.dumps(document).encode()
    status, answer = stack.post(document, json_headers(body, timestamp=int(time.time()) - 301))
    assert status == 401 and "stale" in answer["error"]
    assert stack.new_jobs() == []


def test_an_old_message_with_a_fresh_signature_is_refused_and_audited_not_run(stack, fake_drone):
    """Slack's late retry (or a replay signed anew) of a message older than MESSAGE_MAX_AGE_SECONDS."""
    stack.say(CAROL, "deploy shop-api 128 to staging", at=time.time() - 600)
    stack.work()
    assert drone_changes(fake_drone) == []
    [record] = [r for r in audit_log() if r.result == "stale"]
    assert record.who == "carol"
    assert "too old" in text_of(stack.posted()[0])


def test_a_retry_or_replay_of_one_event_id_is_one_job_and_one_act(stack, fake_drone):
    with stack.slack.lock:
        document = stack.slack.say(CAROL, "deploy shop-api 128 to staging")
    body = json.dumps(document).encode()
    assert stack.post(document)[1]["status"] == "queued"
    retry = {**json_headers(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert stack.post(document, retry)[1]["status"] == "duplicate"
    stack.work()
    assert len(drone_changes(fake_drone)) == 1


def test_the_same_message_under_another_event_id_acts_once(stack, fake_drone):
    """An @-mention in a direct message may come as app_mention and as message.im: one message, one act."""
    with stack.slack.lock:
        document = stack.slack.say(CAROL, "deploy shop-api 128 to staging")
    again = {**document, "event_id": "Ev0THEROTHER"}
    assert stack.post(document)[1]["status"] == "queued" and stack.post(again)[1]["status"] == "queued"
    stack.work()
    assert len(drone_changes(fake_drone)) == 1


def test_a_stranger_s_command_acts_on_nothing_and_is_told_why(stack, fake_drone):
    stack.say(STRANGER, "deploy shop-api 128 to staging")
    stack.work()
    assert drone_changes(fake_drone) == []
    [reply] = stack.posted()
    assert text_of(reply).startswith("⛔")


def test_a_developer_without_the_role_cannot_deploy(stack, fake_drone):
    stack.say(BOB, "deploy shop-api 128 to production")
    stack.work()
    assert drone_changes(fake_drone) == [] and text_of(stack.posted()[0]).startswith("⛔")


@pytest.mark.parametrize(
    "change, why",
    [
        ({"bot_id": "B0OPSBOT", "user": BOT_USER}, "bot"),  # opsbot's own message, or another bot's
        ({"user": BOT_USER}, "bot"),  # the bot's own member id (authorizations)
        ({"subtype": "message_changed"}, "message_changed"),  # an edit
        ({"type": "message", "channel_type": "channel"}, "does not @-mention"),  # a channel message, no mention
        ({"type": "reaction_added"}, "not read"),
    ],
)
def test_bots_edits_and_other_events_are_ignored(stack, change, why):
    with stack.slack.lock:
        document = stack.slack.say(CAROL, "deploy shop-api 128 to staging")
    document["event"].update(change)
    status, answer = stack.post(document)
    assert status == 200 and answer["status"] == "ignored" and why in answer["reason"]
    assert stack.new_jobs() == []


def test_an_event_for_another_app_is_refused(stack):
    with stack.slack.lock:
        document = stack.slack.say(CAROL, "status shop-api")
    document["api_app_id"] = "A0SOMEONEELSE"
    assert stack.post(document)[0] == 401 and stack.new_jobs() == []


def test_no_slack_app_means_the_route_takes_nothing(stack, env):
    env("SLACK_APP_ID", "")
    assert stack.say(CAROL, "status shop-api")[0] == 401


@pytest.mark.parametrize(
    "body, status",
    [
        (b"not json", 400),
        (b"[]", 400),
        (json.dumps({"type": "event_callback", "event": {"type": "app_mention"}}).encode(), 400),  # no event_id
        (json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}).encode(), 400),
        (
            json.dumps(
                {
                    "type": "event_callback",
                    "event_id": "Ev1",
                    "event": {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "yesterday"},
                }
            ).encode(),
            400,
        ),
        (json.dumps({"type": "url_verification"}).encode(), 400),  # no challenge
    ],
)
def test_malformed_events_are_4xx_json_and_queue_nothing(stack, body, status):
    code, answer = stack.post({}, json_headers(body), body)
    assert code == status and "error" in answer
    assert stack.new_jobs() == []


def test_a_form_body_is_415(stack):
    body = b"payload=%7B%7D"
    headers = {**json_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
    assert stack.post({}, headers, body)[0] == 415


# --- the Web API's answers ----------------------------------------------------------------------------------------


def test_a_wrong_bot_token_parks_the_reply_naming_slack(stack, aws):
    from opsbot.aws import client
    from opsbot.settings import settings

    client("ssm").put_parameter(
        Name=settings().slack_bot_token_param, Value="xoxb-revoked", Type="SecureString", Overwrite=True
    )
    from opsbot import secrets

    secrets.clear_cache()
    stack.say(CAROL, "status shop-api")
    stack.work()
    assert stack.posted() == [] and stack.slack.rejected[-1]["reason"] == "invalid_auth"
    [parked] = aws.dead_letters()
    reason = parked["MessageAttributes"]["reason"]["StringValue"]
    assert reason == "Slack Web API chat.postMessage: HTTP 200 invalid_auth" and "xoxb" not in parked["Body"]


def test_a_reply_url_not_built_by_opsbot_never_carries_the_token(stack):
    from opsbot.channels import slack_app
    from opsbot.jobs.model import PermanentFailure

    good = slack_app.reply_url("C0SHOP", "1700000000.000100")
    assert slack_app.is_reply_url(good)
    for bad in (
        "https://evil.example.com/api/chat.postMessage?channel=C0SHOP&thread_ts=1700000000.000100",
        good + "&channel=C0OPS",
        good.replace("thread_ts=", "thread_ts=x"),
        good + "#",
    ):
        assert not slack_app.is_reply_url(bad)
        with pytest.raises(PermanentFailure):
            slack_app.post_message(bad, {"text": "hi"})
    assert stack.slack.posted == []


def test_the_web_api_s_rate_limit_is_retried_after_its_retry_after_and_a_missing_channel_refused(stack):
    from opsbot.channels import slack_app
    from opsbot.jobs.model import PermanentFailure, RetryLater

    url = slack_app.reply_url("C0OPS", "1700000000.000100")
    for _ in range(3):  # a short burst is taken
        slack_app.post_message(url, {"text": "hi"})
    with pytest.raises(RetryLater) as limited:
        slack_app.post_message(url, {"text": "hi"})
    assert limited.value.delay == 1 and "ratelimited" in limited.value.reason
    with pytest.raises(PermanentFailure, match="channel_not_found"):
        slack_app.post_message(slack_app.reply_url("C0GONE", "1700000000.000100"), {"text": "hi"})


def test_without_a_token_slack_says_not_authed(stack, monkeypatch):
    from opsbot.channels import slack_app
    from opsbot.jobs.model import PermanentFailure

    monkeypatch.setattr(slack_app, "get_parameter", lambda name: "")
    with pytest.raises(PermanentFailure, match="invalid_auth|not_authed"):
        slack_app.post_message(slack_app.reply_url("C0SHOP", "1700000000.000100"), {"text": "hi"})
