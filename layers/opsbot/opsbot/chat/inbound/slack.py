"""POST /webhooks/slack/interactivity: a button pressed on one of opsbot's Slack messages (Block Kit
`block_actions`), which runs the button's chat command as the person who pressed it (channels/buttons.py).

Slack signs each request: `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:
{raw body}` under the app's Signing Secret; a timestamp more than 5 minutes from now is refused (Slack's own advice
against replays). The body is form-encoded, its `payload` a JSON document naming the app (`api_app_id`, which must
be SLACK_APP_ID), the presser (`user.id`, matched to `people[].slack_user_id`), the button's `value`, and a
`response_url` (under SLACK_RESPONSE_URL_PREFIX, Slack's own host) through which the message is updated in place.

Slack wants an answer within 3 s, so ingress only verifies and queues, once per press (`trigger_id`, which a
replayed request repeats); the worker checks the button's value is one opsbot made, runs its command through
chat.ingress.answer (the authorization core decides; a stranger's press only tells them why, and only them), and
the act's outcome replaces the message, naming who pressed. One act per button (channels/buttons.press_id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from opsbot.ingress import shape
from opsbot.ingress.accept import Outcome, accept, ignored
from opsbot.ingress.errors import BadRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from opsbot.ingress.request import checked_shape, parse_json_object, raw_body
from opsbot.jobs import kinds
from opsbot.log import logger
from opsbot.secrets import get_parameter
from opsbot.settings import settings

if TYPE_CHECKING:  # types only: the function's cold start verifies and queues, nothing more
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.config.model import Config

CHANNEL = "slack"
EVENT_SOURCE = "slack-press"  # the request's claim, by trigger_id; the act it may become is claimed as CHANNEL
MAX_SKEW_SECONDS = 300
RESPONSE_URL_MS = 30 * 60 * 1000  # Slack takes a response_url for 30 minutes (and 5 uses)
# What the worker keeps of a press: all a chat.command job needs to build the message again.
JOB_FIELDS = ("press_id", "user_id", "user_name", "channel_id", "value", "response_url", "pressed_ms", "text")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature of `body` at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(headers, body: bytes, now: float | None = None) -> None:
    """Unauthorized unless the request is Slack's, signed for this app, and fresh."""
    if not settings().slack_app_id:
        raise Unauthorized("no Slack app is set up for this stack (SLACK_APP_ID is empty)")
    timestamp, given = headers.get("x-slack-request-timestamp") or "", headers.get("x-slack-signature") or ""
    if not timestamp or not given:
        raise Unauthorized("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not timestamp.isdigit() or abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW_SECONDS:
        raise Unauthorized("stale or invalid X-Slack-Request-Timestamp (more than 5 minutes from now)")
    expected = signature(get_parameter(settings().slack_signing_secret_param), timestamp, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        logger.warning("Slack request with a wrong signature")
        raise Unauthorized("the Slack signature does not match")


def _form_payload(body: bytes) -> dict:
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not a form (application/x-www-form-urlencoded)") from None
    payload = form.get("payload") or []
    if len(payload) != 1:
        raise BadRequest("the form must carry one `payload` field")
    return parse_json_object(payload[0].encode())


def press(payload: dict) -> dict:
    """The press a `block_actions` payload describes (its JOB_FIELDS but the id), or {} for another type;
    shape.Malformed names a field it must have."""
    kind = shape.text(payload, "type", required=True, max_chars=40)
    shape.text(payload, "api_app_id", max_chars=40)
    if kind != "block_actions":
        return {}
    user = shape.obj(payload, "user", required=True)
    actions = shape.objects(payload, "actions", max_items=5)
    if not actions:
        raise shape.Malformed("actions must hold the pressed button")
    action = actions[0]
    container = shape.obj(payload, "container")
    channel = shape.obj(payload, "channel")
    action_ts = shape.text(action, "action_ts", "actions[0]", required=True, max_chars=40)
    return {
        "trigger_id": shape.text(payload, "trigger_id", required=True, max_chars=200),
        "user_id": shape.text(user, "id", "user", required=True, max_chars=40),
        "user_name": shape.text(user, "username", "user", max_chars=80)
        or shape.text(user, "name", "user", max_chars=80),
        "action_id": shape.text(action, "action_id", "actions[0]", required=True, max_chars=255),
        "value": shape.text(action, "value", "actions[0]", max_chars=2000),
        "response_url": shape.text(payload, "response_url", required=True, max_chars=500),
        "channel_id": shape.text(channel, "id", "channel", max_chars=40)
        or shape.text(container, "channel_id", "container", max_chars=40),
        "pressed_ms": int(float(action_ts) * 1000) if _number(action_ts) else None,
    }


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def handle_press(http_event) -> Outcome:
    """A verified press, queued once per trigger_id; Slack hears 200 at once (its message stays as it is)."""
    content_type = (http_event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType(
            f"content type must be application/x-www-form-urlencoded, got {content_type or 'none'}"
        )
    body = raw_body(http_event)
    if len(body) > settings().max_body_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes is over the {settings().max_body_bytes} byte limit")
    verify(http_event.headers, body)
    payload = _form_payload(body)
    found = checked_shape(press, payload, "Slack interaction")
    if payload.get("api_app_id") not in (None, settings().slack_app_id):
        raise Unauthorized("the Slack interaction is for another app (api_app_id)")
    if not found:
        return ignored(f"Slack {shape.shown(payload['type'])} interactions are not read, only block_actions")
    from opsbot.channels.slack import ACTION_PREFIX

    if not found["action_id"].startswith(ACTION_PREFIX):
        return ignored("a link button (Slack sends its press too); nothing to run")
    if not found["response_url"].startswith(settings().slack_response_url_prefix):
        raise Unauthorized("the response_url is not Slack's")
    return accept(EVENT_SOURCE, found["trigger_id"], kinds.SLACK_PRESS, found)


# --- the worker's side ------------------------------------------------------------------------------------------


def inbound_message(config: Config, fields: dict) -> InboundMessage:
    """A press (or a chat.command job's copy of it) as the chat layer's message: the button's command, said by the
    presser, answered in place of the message through its response_url."""
    from opsbot.authz.actors import slack_user
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.message import Conversation

    pressed = fields.get("pressed_ms")
    pressed = pressed if isinstance(pressed, int) and not isinstance(pressed, bool) else None
    url = str(fields.get("response_url") or "")
    return InboundMessage(
        channel=CHANNEL,
        msg_id=str(fields["press_id"]),
        text=str(fields.get("text") or ""),
        actor=slack_user(config, str(fields.get("user_id") or ""), str(fields.get("user_name") or "")),
        conversation=Conversation(
            channel=CHANNEL,
            id=str(fields.get("channel_id") or ""),
            reply_url=url if url.startswith(settings().slack_response_url_prefix) else "",
            reply_until_ms=(pressed or 0) + RESPONSE_URL_MS,
        ),
        created_ms=pressed,
        sender_nick=str(fields.get("user_name") or ""),
        people_key="slack_user_id",
        job_fields={k: fields[k] for k in JOB_FIELDS if k in fields},
    )


def payload_of(form_body: str) -> dict:
    """The JSON payload of a form body (local tools and tests)."""
    return json.loads(parse_qs(form_body)["payload"][0])
