"""POST /webhooks/feishu: the event callback of opsbot's Feishu (Lark) app bot, chat's second way in beside DingTalk.

Feishu signs an event only when the app has an Encrypt Key, and then encrypts it (AES), which opsbot does not read.
So the callback is taken as a pointer, not as a statement: it is checked against the app's Verification Token (a
bearer secret, like GitLab's webhook token) and its shape, and queued once per message_id (Feishu may deliver a
message again under a new event_id). The worker then reads the message from Feishu's API by its id, with the app's
own token (channels/feishu_app.py): who sent it, in which chat, and what it says are what Feishu's API reports,
never what the callback says, and a message Feishu does not have for this app does nothing (DESIGN §7, as for
GitLab's notes). A captured callback replayed, or one forged with the token, can at most make opsbot read a real
message again, and that message is acted on only if Feishu's API says it was sent at most MESSAGE_MAX_AGE_SECONDS
before the callback came (ingress/freshness.py), was addressed to the bot (its `mentions` name the bot's own
open_id, or the chat is a one-to-one chat with it: never the callback's say-so), and its act was not claimed before:
an act's marker, by message_id, is kept for good (state/idempotency.py).

Feishu wants its answer within 3 s and retries otherwise (15 s, 5 min, 1 h, 6 h), so the callback only queues:
reads and acts are both answered by the worker, as replies to the message (channels/feishu.py `send_by_session`).
"""

from __future__ import annotations

import hmac
import json
import re
from typing import TYPE_CHECKING

from opsbot.channels import feishu_app
from opsbot.ingress import shape
from opsbot.ingress.accept import Outcome, accept, ignored
from opsbot.ingress.errors import BadRequest, Unauthorized
from opsbot.ingress.request import check_envelope, checked_shape, parse_json_object
from opsbot.jobs import kinds
from opsbot.log import logger
from opsbot.secrets import get_parameter
from opsbot.settings import settings

if TYPE_CHECKING:  # types only: the function's cold start verifies and queues, nothing more
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.config.model import Config

CHANNEL = "feishu"
EVENT_SOURCE = "feishu-event"  # the callback's claim; the act it may become is claimed as CHANNEL, by the same id
MESSAGE_RECEIVED = "im.message.receive_v1"
MAX_TEXT_CHARS = 2000  # as DingTalk's: longer than any command or question
REPLY_OPEN_MS = 24 * 3600 * 1000  # follow-ups reply to the message for a day, then go to the robots
# What the worker keeps of a message it read from Feishu's API: all a chat.command job needs to build it again.
JOB_FIELDS = ("message_id", "chat_id", "open_id", "text", "create_time")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@_user_\d+)+\s*")


def _check_token(given: str) -> None:
    if not feishu_app.configured():
        raise Unauthorized("no Feishu app is set up for this stack (FEISHU_APP_ID is empty)")
    expected = get_parameter(settings().feishu_verification_token_param)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        logger.warning("Feishu callback with a wrong verification token")
        raise Unauthorized("the Feishu verification token does not match")


def message_event(document: dict) -> tuple[str, dict]:
    """The event's type and, for a message, what ingress reads of it (`message_id`, `message_type`, `chat_type`,
    `text`); shape.Malformed names a field a v2.0 event must have."""
    if shape.text(document, "schema", required=True, max_chars=10) != "2.0":
        raise shape.Malformed("schema must be 2.0 (the app's event subscription version)")
    header = shape.obj(document, "header", required=True)
    event_type = shape.text(header, "event_type", "header", required=True, max_chars=100)
    shape.text(header, "token", "header", required=True, max_chars=200)
    shape.text(header, "app_id", "header", max_chars=100)
    if event_type != MESSAGE_RECEIVED:
        return event_type, {}
    event = shape.obj(document, "event", required=True)
    message = shape.obj(event, "message", "event", required=True)
    fields = {
        "message_id": shape.text(message, "message_id", "event.message", required=True, max_chars=200),
        "message_type": shape.text(message, "message_type", "event.message", required=True, max_chars=40),
        "chat_type": shape.text(message, "chat_type", "event.message", max_chars=40),
        "content": shape.text(message, "content", "event.message", max_chars=1 << 20),
    }
    shape.text(message, "chat_id", "event.message", max_chars=200)
    shape.obj(event, "sender", "event")
    return event_type, fields


def _content_text(content: str) -> str:
    """The text of a text message's `content` (a JSON string: `{"text": "@_user_1 status shop-api"}`)."""
    try:
        text = json.loads(content).get("text", "")
    except (ValueError, AttributeError):
        return ""
    return text if isinstance(text, str) else ""


def _addressed(fields: dict) -> bool:
    """A group message opsbot answers starts with an @-mention (of the bot: an app without the scope to read all
    group messages only gets those); in a one-to-one chat, every message is for it."""
    return fields["chat_type"] != "group" or bool(_LEADING_MENTIONS.match(_content_text(fields["content"])))


def _url_check(document: dict) -> tuple[str, str]:
    return shape.text(document, "token", required=True, max_chars=200), shape.text(document, "challenge", required=True)


def handle_event(http_event) -> dict:
    """The response body of a verified callback: the URL check's challenge, or what was done with the event."""
    body = check_envelope(http_event)
    document = parse_json_object(body)
    if "encrypt" in document:
        raise BadRequest("encrypted Feishu events are not read: clear the app's Encrypt Key (README: Wire up Feishu)")
    if document.get("type") == "url_verification":
        token, challenge = checked_shape(_url_check, document, "Feishu URL check")
        _check_token(token)
        return {"challenge": challenge}
    event_type, fields = checked_shape(message_event, document, "Feishu event")
    _check_token(document["header"]["token"])
    app_id = document["header"].get("app_id")
    if app_id and app_id != settings().feishu_app_id:
        raise Unauthorized("the Feishu event is for another app (header.app_id)")
    return _queued(event_type, fields).as_dict()


def _queued(event_type: str, fields: dict) -> Outcome:
    if event_type != MESSAGE_RECEIVED:
        return ignored(f"Feishu {shape.shown(event_type)} events are not read, only {MESSAGE_RECEIVED}")
    if fields["message_type"] != "text":
        return ignored(f"Feishu {shape.shown(fields['message_type'])} messages are not read, only text")
    if not _addressed(fields):
        return ignored("a group message that does not @-mention the bot")
    return accept(EVENT_SOURCE, fields["message_id"], kinds.FEISHU_MESSAGE, {"message_id": fields["message_id"]})


# --- the worker's side: the message as Feishu's API reports it -----------------------------------------------------


def _text(content: str, mentions: list) -> str:
    """What was said: the leading @-mentions (the bot) taken off, later ones as `@name`."""
    text = _content_text(content)
    # JSON may escape a lone surrogate, which no reply could carry: made a "?" here, once.
    text = _LEADING_MENTIONS.sub("", text.encode("utf-8", "replace").decode("utf-8"))
    for mention in mentions if isinstance(mentions, list) else []:
        if isinstance(mention, dict) and isinstance(mention.get("key"), str) and mention["key"]:
            text = text.replace(mention["key"], f"@{mention.get('name') or '?'}")
    return text.strip()[:MAX_TEXT_CHARS]


def fields_from_api(message_id: str, found: dict) -> tuple[dict | None, str]:
    """The job fields of a message read from Feishu's API, or None and why opsbot does not answer it."""
    sender = found.get("sender") if isinstance(found.get("sender"), dict) else {}
    if sender.get("sender_type") != "user" or sender.get("id_type", "open_id") != "open_id":
        return None, f"sent by a {shape.shown(sender.get('sender_type'))}, not a person"
    if found.get("msg_type") != "text":
        return None, f"a {shape.shown(found.get('msg_type'))} message, not text"
    body = found.get("body") if isinstance(found.get("body"), dict) else {}
    content = body.get("content") if isinstance(body.get("content"), str) else ""
    created = str(found.get("create_time") or "")
    return {
        "message_id": message_id,
        "chat_id": str(found.get("chat_id") or ""),
        "open_id": str(sender.get("id") or ""),
        "text": _text(content, found.get("mentions")),
        "create_time": int(created) if created.isdigit() else None,
    }, ""


def addressed(found: dict) -> bool:
    """Whether a message read from Feishu's API was for the bot: its `mentions` (Feishu's, not the callback's) name
    the bot's open_id, or its chat is a one-to-one chat with the bot. The callback's `chat_type` and content are a
    forger's to write, so they decide nothing here."""
    mentions = found.get("mentions") if isinstance(found.get("mentions"), list) else []
    ids = {m.get("id") for m in mentions if isinstance(m, dict) and m.get("id_type", "open_id") == "open_id"}
    if ids and feishu_app.bot_open_id() in ids:
        return True
    chat_id = found.get("chat_id")
    return isinstance(chat_id, str) and bool(chat_id) and feishu_app.chat_mode(chat_id) == "p2p"


def inbound_message(config: Config, fields: dict) -> InboundMessage:
    """A message the worker read from Feishu's API (or a chat.command job's copy of it) as the chat layer's."""
    from opsbot.authz.actors import feishu_user
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.message import Conversation

    message_id, created = str(fields["message_id"]), fields.get("create_time")
    created = created if isinstance(created, int) and not isinstance(created, bool) else None
    return InboundMessage(
        channel=CHANNEL,
        msg_id=message_id,
        text=str(fields.get("text") or ""),
        actor=feishu_user(config, str(fields.get("open_id") or "")),
        conversation=Conversation(
            channel=CHANNEL,
            id=str(fields.get("chat_id") or ""),
            reply_url=feishu_app.reply_url(message_id),  # built here, never read from a body
            reply_until_ms=(created or 0) + REPLY_OPEN_MS,
        ),
        created_ms=created,
        people_key="feishu_open_id",
        job_fields={k: fields[k] for k in JOB_FIELDS if k in fields},
    )
