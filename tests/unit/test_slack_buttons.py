"""Buttons that act, in Slack: an approval request's Approve and Reject, and a preview's Confirm, rendered as Block
Kit buttons whose value opsbot signs (channels/buttons.py); a press posted to /webhooks/slack/interactivity as Slack
posts it (form-encoded `payload`, v0 signature), queued once per press, run by the worker as the presser through
the authorization core; the outcome replaces the message through its response_url (the fake Slack's), naming who
pressed; a refusal goes to the presser alone. Each happy path has its attacks next to it."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode

import pytest
from chat_support import audit_log, callback
from unit_support import SLACK_APP_ID, SLACK_SIGNING_SECRET, http_event, json_body, sqs_event

from local.fake_slack import signed_headers
from opsbot.release import approvals

CAROL, BOB, ALICE, STRANGER = ("U0CAROL", "carol"), ("U0BOB", "bob"), ("U0ALICE", "alice"), ("U0NOBODY", "nobody")
PATH = "/webhooks/slack/interactivity"


@pytest.fixture
def slack(chat_config, fake_dingtalk, env):
    """The fake Slack (its response_urls), with the stack set up for the Slack app's interactivity."""
    env("SLACK_APP_ID", SLACK_APP_ID)
    env("SLACK_RESPONSE_URL_PREFIX", f"{fake_dingtalk.url}/actions/")
    fake_dingtalk.slack.base_url = fake_dingtalk.url
    return fake_dingtalk.slack


class Stack:
    def __init__(self, aws, handlers, lambda_context, slack):
        self.aws, self.handlers, self.context, self.slack = aws, handlers, lambda_context, slack
        self.done: set[str] = set()

    def post(self, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
        headers = headers if headers is not None else signed_headers(SLACK_SIGNING_SECRET, body)
        event = http_event(PATH, body, headers, content_type=headers.get("Content-Type"))
        response = self.handlers.slack_bot.lambda_handler(event, self.context)
        return response["statusCode"], json_body(response)

    def press(self, message: dict, button: int, user: tuple[str, str]) -> tuple[int, dict]:
        with self.slack.lock:
            body = self.slack.press(self.slack.base_url, SLACK_APP_ID, message, button, user)
        return self.post(body)

    def new_jobs(self) -> list[dict]:
        return [m for m in self.aws.receive(visibility=0) if m["MessageId"] not in self.done]

    def work(self, rounds: int = 3) -> None:
        """Run what is on the queue, and what those jobs queue, as SQS would hand it over."""
        for _ in range(rounds):
            messages = [m for m in self.aws.receive(visibility=0) if m["MessageId"] not in self.done]
            if not messages:
                return
            self.done.update(m["MessageId"] for m in messages)
            response = self.handlers.worker.lambda_handler(sqs_event(messages), self.context)
            assert response["batchItemFailures"] == []


@pytest.fixture
def stack(aws, handlers, lambda_context, slack) -> Stack:
    return Stack(aws, handlers, lambda_context, slack)


def drone_changes(fake_drone) -> list[tuple[str, str]]:
    return [(c["method"], c["path"]) for c in fake_drone.calls if c["method"] != "GET"]


def approval_card(stack: Stack, fake_dingtalk) -> tuple[approvals.ApprovalRequest, dict]:
    """Alice asks (in DingTalk) to deploy shop-api #128 to production: the approval request, and its message as a
    Slack robot of the project's renders it."""
    from opsbot.channels import slack as slack_channel
    from opsbot.chat.inbound.dingtalk import answer_callback
    from opsbot.config import store
    from opsbot.release.deploy import approval_opened

    session = f"{fake_dingtalk.url}/robot/sendBySession?session=local-session-unit"
    answer_callback(callback("deploy shop-api 128 to production", "alice", session_webhook=session))
    stack.work()
    [request] = [approvals.get(r.id) for r in _approval_ids()]
    message = slack_channel.render(approval_opened(request, "en").as_message("en"), store.load().person)
    return request, message


def _approval_ids():
    from opsbot.aws import client
    from opsbot.settings import settings

    items = client("dynamodb").scan(TableName=settings().state_table)["Items"]
    return [approvals.get(i["id"]["S"]) for i in items if i["pk"]["S"].startswith("approval#")]


def texts(messages: list[dict]) -> list[str]:
    return ["\n".join(b["text"]["text"] for b in m["blocks"] if b["type"] == "section") for m in messages]


# --- the buttons ----------------------------------------------------------------------------------------------------


def test_an_approval_request_has_approve_and_reject_buttons_signed_by_opsbot(stack, fake_dingtalk):
    from opsbot.channels import buttons

    request, message = approval_card(stack, fake_dingtalk)
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    pressed = [(e["text"]["text"], buttons.command_of(e["value"])) for e in actions["elements"]]
    assert pressed == [("✅ Approve", f"approve {request.id}"), ("❌ Reject", f"reject {request.id}")]
    assert all(e["action_id"].startswith("opsbot.press.") and "url" not in e for e in actions["elements"])


def test_without_the_slack_app_a_message_keeps_no_command_buttons(stack, fake_dingtalk, env):
    env("SLACK_APP_ID", "")
    _request, message = approval_card(stack, fake_dingtalk)
    assert [b for b in message["blocks"] if b["type"] == "actions"] == []  # the text still says `approve <id>`


# --- one press approves, the message shows who did ---------------------------------------------------------------


def test_a_second_deployer_approves_with_one_press_and_the_message_shows_it_in_place(stack, fake_dingtalk, fake_drone):
    request, message = approval_card(stack, fake_dingtalk)
    status, answer = stack.press(message, 0, CAROL)
    assert (status, answer["status"]) == (200, "queued")
    stack.work()
    assert drone_changes(fake_drone) == [("POST", "/api/repos/shop/shop-api/builds/128/promote")]
    decided = approvals.get(request.id)
    assert (decided.status, decided.decided_by) == ("approved", "carol")
    [got_it] = texts(stack.slack.ephemeral)
    assert "Got it" in got_it or "收到" in got_it
    [outcome] = texts(stack.slack.replaced)
    assert f"`{request.id}`" in outcome and "Carol Zhang" in outcome and "pressed by Carol Zhang" in outcome
    assert [b["type"] for b in stack.slack.replaced[0]["blocks"]] == ["section"] * len(
        stack.slack.replaced[0]["blocks"]
    )
    [record] = [r for r in audit_log() if r.command == "approve"]
    assert (record.who, record.via, record.result) == ("carol", "slack", "succeeded")


def test_a_button_pressed_twice_or_on_two_devices_acts_once(stack, fake_dingtalk, fake_drone):
    _request, message = approval_card(stack, fake_dingtalk)
    assert stack.press(message, 0, CAROL)[1]["status"] == "queued"
    assert stack.press(message, 0, CAROL)[1]["status"] == "queued"  # a second press is a new request (trigger_id)
    stack.work()
    assert drone_changes(fake_drone) == [("POST", "/api/repos/shop/shop-api/builds/128/promote")]
    assert len(stack.slack.replaced) == 1
    assert any("already pressed" in t or "已经按过" in t for t in texts(stack.slack.ephemeral))


def test_a_replayed_request_is_one_press(stack, fake_dingtalk, fake_drone):
    _request, message = approval_card(stack, fake_dingtalk)
    with stack.slack.lock:
        body = stack.slack.press(stack.slack.base_url, SLACK_APP_ID, message, 0, CAROL)
    headers = signed_headers(SLACK_SIGNING_SECRET, body)
    assert stack.post(body, headers)[1]["status"] == "queued"
    assert stack.post(body, headers) == (200, {"status": "duplicate", "job": stack.post(body, headers)[1]["job"]})
    stack.work()
    assert drone_changes(fake_drone) == [("POST", "/api/repos/shop/shop-api/builds/128/promote")]


# --- who may not -------------------------------------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_request_by_a_button(stack, fake_dingtalk, fake_drone):
    request, message = approval_card(stack, fake_dingtalk)
    stack.press(message, 0, ALICE)
    stack.work()
    assert drone_changes(fake_drone) == [] and approvals.get(request.id).status == "pending"
    assert stack.slack.replaced == []  # the message keeps its buttons for someone who may
    assert "You cannot approve your own request" in texts(stack.slack.ephemeral)[-1]


def test_a_stranger_s_press_does_nothing_but_tell_them_why(stack, fake_dingtalk, fake_drone):
    request, message = approval_card(stack, fake_dingtalk)
    stack.press(message, 0, STRANGER)
    stack.work()
    assert drone_changes(fake_drone) == [] and approvals.get(request.id).status == "pending"
    assert stack.slack.replaced == []
    [told] = texts(stack.slack.ephemeral)
    assert told.startswith("⛔") and "U0NOBODY" in told  # the Slack member id to give an admin


def test_a_developer_without_the_role_cannot_approve_by_a_button(stack, fake_dingtalk, fake_drone):
    request, message = approval_card(stack, fake_dingtalk)
    stack.press(message, 0, BOB)
    stack.work()
    assert drone_changes(fake_drone) == [] and approvals.get(request.id).status == "pending"
    assert stack.slack.replaced == [] and texts(stack.slack.ephemeral)[-1].startswith("⛔")


def test_reject_by_a_button(stack, fake_dingtalk, fake_drone):
    request, message = approval_card(stack, fake_dingtalk)
    stack.press(message, 1, CAROL)
    stack.work()
    assert drone_changes(fake_drone) == [] and approvals.get(request.id).status == "rejected"
    [outcome] = texts(stack.slack.replaced)
    assert "pressed by Carol Zhang" in outcome


# --- forged, stale, replayed, not ours ------------------------------------------------------------------------------


def test_a_forged_signature_is_refused_and_queues_nothing(stack, fake_dingtalk, aws):
    _request, message = approval_card(stack, fake_dingtalk)
    with stack.slack.lock:
        body = stack.slack.press(stack.slack.base_url, SLACK_APP_ID, message, 0, CAROL)
    forged = signed_headers("not-the-signing-secret", body)
    assert stack.post(body, forged) == (401, {"error": "the Slack signature does not match"})
    missing = {"Content-Type": "application/x-www-form-urlencoded"}
    assert stack.post(body, missing)[0] == 401
    assert stack.new_jobs() == []


def test_a_stale_timestamp_is_refused_even_when_signed(stack, fake_dingtalk, aws):
    _request, message = approval_card(stack, fake_dingtalk)
    with stack.slack.lock:
        body = stack.slack.press(stack.slack.base_url, SLACK_APP_ID, message, 0, CAROL)
    stale = signed_headers(SLACK_SIGNING_SECRET, body, int(time.time()) - 301)
    status, answer = stack.post(body, stale)
    assert status == 401 and "stale" in answer["error"]
    assert stack.new_jobs() == []


def test_a_body_changed_after_signing_is_refused(stack, fake_dingtalk):
    _request, message = approval_card(stack, fake_dingtalk)
    with stack.slack.lock:
        body = stack.slack.press(stack.slack.base_url, SLACK_APP_ID, message, 0, STRANGER)
    headers = signed_headers(SLACK_SIGNING_SECRET, body)
    assert stack.post(body.replace(b"U0NOBODY", b"U0CAROL"), headers)[0] == 401


def test_a_button_opsbot_never_sent_does_nothing(stack, fake_dingtalk, fake_drone):
    """Signed by Slack (a press on some message of the app), but the value is not a button opsbot made: someone
    else's request id with the MAC of another command, or a command with no MAC at all."""
    from opsbot.channels import buttons

    request, message = approval_card(stack, fake_dingtalk)
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    good = actions["elements"][0]["value"]
    _, encoded, mac = good.split(".")
    other = buttons.value("approve deadbeef").split(".")[1]
    for forged in (f"b1.{other}.{mac}", "b1.YXBwcm92ZSBkZWFkYmVlZg.", "approve " + request.id):
        actions["elements"][0]["value"] = forged
        assert stack.press(message, 0, CAROL)[1]["status"] == "queued"
    stack.work()
    assert drone_changes(fake_drone) == [] and approvals.get(request.id).status == "pending"
    assert stack.slack.ephemeral == [] and stack.slack.replaced == []


def test_a_press_for_another_app_or_a_response_url_elsewhere_is_refused(stack, fake_dingtalk, aws):
    _request, message = approval_card(stack, fake_dingtalk)
    with stack.slack.lock:
        body = stack.slack.press(stack.slack.base_url, SLACK_APP_ID, message, 0, CAROL)
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    for changed in ({**payload, "api_app_id": "AOTHERAPP"}, {**payload, "response_url": "https://evil.example/x"}):
        forged = urlencode({"payload": json.dumps(changed)}).encode()
        assert stack.post(forged)[0] == 401
    assert stack.new_jobs() == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"payload=%7B", "application/x-www-form-urlencoded", 400),  # not JSON
        (b"payload=%5B%5D", "application/x-www-form-urlencoded", 400),  # not an object
        (b"nothing=here", "application/x-www-form-urlencoded", 400),
        (b'{"type": "block_actions"}', "application/json", 415),
        (b"payload=" + b"%7B%22type%22%3A%22block_actions%22%7D", "application/x-www-form-urlencoded", 400),
    ],
)
def test_malformed_presses_are_4xx_json_and_queue_nothing(stack, slack, aws, body, content_type, status):
    headers = {**signed_headers(SLACK_SIGNING_SECRET, body), "Content-Type": content_type}
    got, answer = stack.post(body, headers)
    assert got == status and isinstance(answer["error"], str)
    assert aws.receive(visibility=0) == []


def test_other_interactions_and_link_buttons_are_ignored(stack, slack):
    shortcut = urlencode({"payload": json.dumps({"type": "shortcut", "api_app_id": SLACK_APP_ID})}).encode()
    assert stack.post(shortcut) == (200, {"status": "ignored", "reason": stack.post(shortcut)[1]["reason"]})


def test_no_slack_app_means_the_route_takes_nothing(stack, slack, env):
    env("SLACK_APP_ID", "")
    body = urlencode({"payload": "{}"}).encode()
    assert stack.post(body)[0] == 401


# --- a preview's confirm --------------------------------------------------------------------------------------------


def test_a_preview_s_confirm_button_is_the_requester_s_alone():
    from opsbot.channels import buttons

    [confirm] = buttons.confirm_button("1a2b3c4d", "en")
    assert (confirm.label, confirm.command, confirm.url) == ("▶️ Confirm", "confirm 1a2b3c4d", "")
    # one act per button: a confirm pressed twice is one confirm; approvals count once per person
    value = buttons.value("confirm 1a2b3c4d")
    assert buttons.press_id(value, "alice") == buttons.press_id(value, "bob")
    approve = buttons.value("approve 1a2b3c4d")
    assert buttons.press_id(approve, "carol") != buttons.press_id(approve, "dave")


# --- a build notification's release button ---------------------------------------------------------------------


def release_card() -> dict:
    """A Slack robot's build card for shop-api #128 with its "发布到 staging" button (notify/render.py makes it
    with the release link, for every channel, and the command, for Slack's app)."""
    from opsbot.channels import slack as slack_channel
    from opsbot.config import store
    from opsbot.message import Button, Message

    button = Button("发布到 staging", "https://opsbot.example.com/actions/t0ken", "deploy shop-api 128 to staging")
    message = Message(title="✅ shop-api #128", lines=["main · feat(order): add refund endpoint"], buttons=[button])
    return slack_channel.render(message, store.load().person)


def test_a_release_to_staging_is_one_press_and_the_card_shows_who_released(stack, fake_drone):
    card = release_card()
    [actions] = [b for b in card["blocks"] if b["type"] == "actions"]
    assert "url" not in actions["elements"][0]  # with the app, the button itself releases
    assert stack.press(card, 0, CAROL)[1]["status"] == "queued"
    stack.work()
    assert drone_changes(fake_drone) == [("POST", "/api/repos/shop/shop-api/builds/128/promote")]
    [outcome] = texts(stack.slack.replaced)
    assert "staging" in outcome and ("Carol Zhang" in outcome)
    assert stack.press(card, 0, ALICE)[1]["status"] == "queued"  # the same button again, by someone else
    stack.work()
    assert len(drone_changes(fake_drone)) == 1 and len(stack.slack.replaced) == 1


def test_a_release_button_pressed_by_someone_without_the_role_releases_nothing(stack, fake_drone):
    card = release_card()
    stack.press(card, 0, BOB)  # a developer, not a deployer
    stack.work()
    assert drone_changes(fake_drone) == [] and stack.slack.replaced == []
    assert texts(stack.slack.ephemeral)[-1].startswith("⛔")
    stack.press(card, 0, CAROL)  # a refusal claims nothing: a deployer's press still releases
    stack.work()
    assert drone_changes(fake_drone) == [("POST", "/api/repos/shop/shop-api/builds/128/promote")]


def test_other_channels_keep_the_release_link(env):
    from opsbot.channels import dingtalk, feishu, wecom
    from opsbot.message import Button, Message

    env("SLACK_APP_ID", SLACK_APP_ID)
    button = Button("发布到 staging", "https://opsbot.example.com/actions/t0ken", "deploy shop-api 128 to staging")
    message = Message(title="✅ shop-api #128", lines=["main"], buttons=[button])
    people = {}.get
    assert dingtalk.render(message, people)["actionCard"]["btns"][0]["actionURL"] == button.url
    assert feishu.render(message, people)["card"]["elements"][-1]["actions"][0]["url"] == button.url
    assert button.url in wecom.render(message, people)["markdown"]["content"]


def test_a_response_url_slack_no_longer_takes_leaves_the_press_done_not_parked(stack, fake_dingtalk, aws):
    """Slack takes a response_url 5 times within 30 minutes: past that (404 used_url / expired_url) nobody can be
    told, so the press job ends; the act, queued on its own, still runs (its outcome then has nowhere to go)."""
    _request, message = approval_card(stack, fake_dingtalk)
    with stack.slack.lock:
        body = stack.slack.press(stack.slack.base_url, SLACK_APP_ID, message, 0, STRANGER)
        for issued in stack.slack.response_urls.values():
            issued["uses"] = 5
    stack.post(body)
    stack.work()
    # (the test's queue is never emptied, so SQS's own redrive may move old messages: only the worker's parking
    # carries a reason)
    parked = [m["MessageAttributes"]["reason"] for m in aws.dead_letters() if "reason" in m["MessageAttributes"]]
    assert stack.slack.ephemeral == [] and parked == []
    assert [r["reason"] for r in stack.slack.rejected] == ["404 used_url"]


def test_a_production_release_becomes_an_approval_in_place_and_a_second_press_deploys(stack, fake_drone):
    """ "发布到 production" pressed by alice: the card becomes the approval request, with Approve and Reject, in place;
    alice's own Approve is refused to her alone; carol's deploys once and the card shows it, naming carol."""
    from opsbot.channels import slack as slack_channel
    from opsbot.config import store
    from opsbot.message import Button, Message

    button = Button("发布到 production", "https://opsbot.example.com/actions/t0k", "deploy shop-api 128 to production")
    card = slack_channel.render(
        Message(title="✅ shop-api #128", lines=["main"], buttons=[button]), store.load().person
    )
    stack.press(card, 0, ALICE)
    stack.work()
    assert drone_changes(fake_drone) == []
    [approval] = stack.slack.replaced
    assert "Approval request" in texts([approval])[0] or "审批请求" in texts([approval])[0]
    [actions] = [b for b in approval["blocks"] if b["type"] == "actions"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["✅ Approve", "❌ Reject"] or [
        e["text"]["text"] for e in actions["elements"]
    ] == ["✅ 批准", "❌ 拒绝"]

    stack.press(approval, 0, ALICE)  # the requester, on the card that replaced hers
    stack.work()
    assert drone_changes(fake_drone) == [] and len(stack.slack.replaced) == 1
    stack.press(approval, 0, CAROL)
    stack.work()
    assert drone_changes(fake_drone) == [("POST", "/api/repos/shop/shop-api/builds/128/promote")]
    outcome = texts([stack.slack.replaced[-1]])[0]
    assert "Carol Zhang" in outcome and ("pressed by Carol Zhang" in outcome or "Carol Zhang 按下" in outcome)
