"""Slack's two ways in, verified in one place (`verify`):

- POST /webhooks/slack/events (the Events API): a typed command, `app_mention` in a channel or `message` in a
  direct message (`channel_type` `im`), answered in the message's thread through the Web API (channels/slack_app.py).
- POST /webhooks/slack/interactivity: a button pressed on one of opsbot's Slack messages (Block Kit
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

An event is signed the same way, and its body is JSON: `url_verification` is answered with its `challenge` (Slack
signs that too); an `event_callback` is queued once per `event_id` (Slack's retries, `X-Slack-Retry-Num`, repeat
it). Because the body is signed, what it says (who, where, what, when) is Slack's word. Ignored, with a 200: bot
messages (`bot_id`, or the bot's own member id in `authorizations`), edits and other `subtype`s, channel messages
that are not mentions (`message` outside `im`). The worker refuses a message older than MESSAGE_MAX_AGE_SECONDS by
its own `ts` (ingress/freshness.py), maps `user` to a person by `slack_user_id`, and answers through
chat.ingress.answer; its act is claimed for good by channel and `ts` (an @-mention in a direct message may come
as both events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from opsbot.ingress import shape
from opsbot.ingress.accept import Outcome, accept, ignored
from opsbot.ingress.errors import BadRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from opsbot.ingress.request import check_envelope, checked_shape, parse_json_object, raw_body
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
MESSAGE_SOURCE = "slack-event"  # an event's claim, by event_id; the act it may become is claimed as CHANNEL
MESSAGE_EVENTS = ("app_mention", "message")
MAX_TEXT_CHARS = 2000  # as DingTalk's and Feishu's: longer than any command or question
REPLY_OPEN_MS = 24 * 3600 * 1000  # follow-ups go into the message's thread for a day, then to the robots
# What the worker keeps of a typed message: all a chat.command job needs to build it again.
MESSAGE_FIELDS = ("event_id", "user_id", "channel_id", "ts", "thread_ts", "text")
_LEADING_MENTIONS = re.compile(r"^(?:\s*<@[A-Z0-9]+(?:\|[^>]*)?>)+\s*")
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")


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


def handle_event(http_event) -> dict:
    """The response body of a verified Events API request: the URL check's challenge, or what was done with the
    event (queued once per event_id, a duplicate, or ignored and why)."""
    body = check_envelope(http_event)  # JSON, within MAX_BODY_BYTES
    verify(http_event.headers, body)
    document = parse_json_object(body)
    kind, found = checked_shape(event_callback, document, "Slack event")
    if document.get("api_app_id") not in (None, settings().slack_app_id):
        raise Unauthorized("the Slack event is for another app (api_app_id)")
    if kind == "url_verification":
        return {"challenge": found["challenge"]}
    if kind != "event_callback":
        return ignored(f"Slack {shape.shown(kind)} requests are not read, only event_callback").as_dict()
    if why_not := _not_for_us(found):
        return ignored(why_not).as_dict()
    job = {k: found[k] for k in MESSAGE_FIELDS}
    return accept(MESSAGE_SOURCE, found["event_id"], kinds.SLACK_MESSAGE, job).as_dict()


def event_callback(document: dict) -> tuple[str, dict]:
    """The request's type and what ingress reads of it: the URL check's `challenge`, or an event_callback's event;
    shape.Malformed names a field it must have."""
    kind = shape.text(document, "type", required=True, max_chars=40)
    shape.text(document, "api_app_id", max_chars=40)
    if kind == "url_verification":
        return kind, {"challenge": shape.text(document, "challenge", required=True, max_chars=200)}
    if kind != "event_callback":
        return kind, {}
    event = shape.obj(document, "event", required=True)
    bots = [
        shape.text(a, "user_id", "authorizations[]", max_chars=40)
        for a in shape.objects(document, "authorizations", max_items=10)
        if a.get("is_bot") is True
    ]
    found = {
        "event_id": shape.text(document, "event_id", required=True, max_chars=100),
        "type": shape.text(event, "type", "event", required=True, max_chars=60),
        "subtype": shape.text(event, "subtype", "event", max_chars=60),
        "bot_id": shape.text(event, "bot_id", "event", max_chars=40),
        "user_id": shape.text(event, "user", "event", max_chars=40),
        "channel_id": shape.text(event, "channel", "event", max_chars=40),
        "channel_type": shape.text(event, "channel_type", "event", max_chars=20),
        "ts": shape.text(event, "ts", "event", max_chars=40),
        "thread_ts": shape.text(event, "thread_ts", "event", max_chars=40),
        "text": _said(shape.text(event, "text", "event", max_chars=40_000)),
        "own_bot": bool(bots) and shape.text(event, "user", "event", max_chars=40) in bots,
    }
    if found["type"] in MESSAGE_EVENTS and not found["subtype"] and not found["bot_id"]:
        for key in ("user_id", "channel_id", "ts"):
            if not found[key]:
                raise shape.Malformed(f"event.{'user' if key == 'user_id' else key.removesuffix('_id')} is required")
        for key in ("ts", "thread_ts"):
            if found[key] and not _TS.match(found[key]):
                raise shape.Malformed(f"event.{key} must be a Slack timestamp (seconds.micro)")
    return kind, found


def _said(text: str) -> str:
    """What was said: the leading @-mentions (the bot) taken off, and Slack's three escapes undone."""
    text = _LEADING_MENTIONS.sub("", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()[:MAX_TEXT_CHARS]


def _not_for_us(found: dict) -> str:
    """Why an event is not a person's message to opsbot; "" when it is."""
    if found["type"] not in MESSAGE_EVENTS:
        return f"Slack {shape.shown(found['type'])} events are not read, only app_mention and message.im"
    if found["bot_id"] or found["own_bot"] or found["subtype"] == "bot_message":
        return "a bot's message (opsbot's own among them)"
    if found["subtype"]:
        return f"a {shape.shown(found['subtype'])} message (edits, deletions and joins are not commands)"
    if found["type"] == "message" and found["channel_type"] != "im":
        return "a channel message that does not @-mention the bot (its app_mention event is the one read)"
    return ""


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


def message_fields(payload: dict) -> dict:
    """A chat.slack_message job's fields, as ingress wrote them; shape.Malformed for one it could not have."""
    for key in ("event_id", "user_id", "channel_id", "ts"):
        shape.text(payload, key, required=True, max_chars=100)
    shape.text(payload, "thread_ts", max_chars=40)
    shape.text(payload, "text", max_chars=MAX_TEXT_CHARS)
    if not _TS.match(payload["ts"]):
        raise shape.Malformed("ts must be a Slack timestamp (seconds.micro)")
    return {k: payload.get(k, "") for k in MESSAGE_FIELDS}


def _typed_message(config: Config, fields: dict) -> InboundMessage:
    """A typed message (or a chat.command job's copy of it): answered in its thread through the Web API."""
    from opsbot.authz.actors import slack_user
    from opsbot.channels import slack_app
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.message import Conversation

    channel, ts = str(fields.get("channel_id") or ""), str(fields.get("ts") or "")
    created = int(float(ts) * 1000) if _TS.match(ts) else None
    return InboundMessage(
        channel=CHANNEL,
        msg_id=f"{channel}:{ts}",  # both events of one message (app_mention and message.im) are one act
        text=str(fields.get("text") or ""),
        actor=slack_user(config, str(fields.get("user_id") or "")),
        conversation=Conversation(
            channel=CHANNEL,
            id=channel,
            # built here from Slack's ids, never a URL from a body; a reply in a thread stays in it
            reply_url=slack_app.reply_url(channel, str(fields.get("thread_ts") or "") or ts),
            reply_until_ms=(created or 0) + REPLY_OPEN_MS,
        ),
        created_ms=created,
        people_key="slack_user_id",
        job_fields={k: fields[k] for k in MESSAGE_FIELDS if k in fields},
    )


def inbound_message(config: Config, fields: dict) -> InboundMessage:
    """A press or a typed message (or a chat.command job's copy of either) as the chat layer's message. A press:
    the button's command, said by the presser, answered in place of the message through its response_url."""
    from opsbot.authz.actors import slack_user

    if "ts" in fields:
        return _typed_message(config, fields)
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
