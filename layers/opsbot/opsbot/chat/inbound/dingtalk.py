"""POST /webhooks/dingtalk: an @opsbot message from a group, verified once, read into an InboundMessage, then
answered by the chat layer; the answer goes back in the callback's response, in DingTalk's markdown.

DingTalk's sign covers only the timestamp, not the body. So a (timestamp, sign) pair is accepted for one message
only: the first callback that carries it binds it to its msgId, and the same pair with any other msgId is refused
(401) and logged. DingTalk redelivering the same message (same msgId) still passes, and msgId dedupe makes it
act once. What remains is the limit the README states: whoever can see a callback before DingTalk delivers it
could race it with a forged body.

This module is the one reader of a callback's fields (the sender through authz.actors.dingtalk_sender): the chat
layer sees the InboundMessage, and the worker builds the same one again from the fields a job keeps (JOB_FIELDS).
Because the body is not signed, the sessionWebhook is used only under DINGTALK_SESSION_WEBHOOK_PREFIX (DingTalk's
own host): anything else would let a forged body aim opsbot's replies at any URL.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from opsbot.dingtalk import signature
from opsbot.ingress import shape
from opsbot.ingress.errors import Unauthorized
from opsbot.ingress.request import check_envelope, checked_shape, parse_json_object
from opsbot.log import logger
from opsbot.secrets import get_parameter
from opsbot.settings import settings
from opsbot.state import idempotency, keys

if TYPE_CHECKING:  # types only: what they import loads after a callback is verified
    from opsbot.chat.inbound.message import InboundMessage
    from opsbot.config.model import Config
    from opsbot.message import Conversation, Reply

CHANNEL = "dingtalk"
# A pair is fresh for an hour either side of now: remember it until its timestamp is stale for good.
SIGN_MEMORY_SECONDS = signature.MAX_SKEW_MS // 1000 + 300
MAX_TEXT_CHARS = 2000  # longer than any command or question; a pasted log is cut, not parsed in full
EMPTY_REPLY = {"msgtype": "empty"}
# What the worker needs of a callback to answer it: the job carries these, not the whole body.
JOB_FIELDS = (
    "msgId",
    "createAt",
    "senderStaffId",
    "senderId",
    "senderNick",
    "conversationId",
    "conversationTitle",
    "sessionWebhook",
    "sessionWebhookExpiredTime",
)


# The callback's fields this module reads besides the text and the times (its shape is checked at ingress).
_TEXTS = ("senderStaffId", "senderId", "senderNick", "conversationId", "conversationTitle", "robotCode")


def text_message_id(message: dict) -> str:
    """The msgId of a text message opsbot answers; "" for another kind of message (a picture, a file, …), which
    it does not read; shape.Malformed for a body that is not a DingTalk callback."""
    msg_id = shape.text(message, "msgId", required=True, max_chars=1 << 20)  # a long one is deduplicated by its hash
    msgtype = shape.text(message, "msgtype", required=True, max_chars=40)
    for key in _TEXTS:
        shape.text(message, key)
    shape.text(message, "sessionWebhook")
    for key in ("createAt", "sessionWebhookExpiredTime"):
        shape.integer(message, key, minimum=-(2**63))
    if msgtype != "text":
        return ""
    shape.text(shape.obj(message, "text", required=True), "content", "text", max_chars=1 << 20)
    return msg_id


def ignored_reply(reason: str) -> dict:
    """Nothing to say in the conversation (DingTalk shows no `empty` message), and why, for the log and tests."""
    logger.info("ignored", extra={"reason": reason})
    return {"msgtype": "empty", "status": "ignored", "reason": reason}


def claim_signature(timestamp: str, sign: str, msg_id: str) -> None:
    """Bind the callback's (timestamp, sign) pair to its msgId, or refuse a pair seen with another message."""
    pair = hashlib.sha256(f"{timestamp}\n{sign}".encode()).hexdigest()
    if not idempotency.bind(keys.SIGNATURE + pair, msg_id, int(timestamp) // 1000 + SIGN_MEMORY_SECONDS):
        logger.warning("DingTalk signature replayed with another message", extra={"timestamp": timestamp})
        raise Unauthorized("this DingTalk timestamp and sign were already used for another message")


def _string(fields: dict, key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


def _integer(fields: dict, key: str) -> int | None:
    value = fields.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(fields: dict) -> str:
    text = fields.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    return content[:MAX_TEXT_CHARS] if isinstance(content, str) else ""


def conversation(fields: dict) -> Conversation:
    """The callback's group, and its sessionWebhook when it is DingTalk's own."""
    from opsbot.message import Conversation

    url = _string(fields, "sessionWebhook")
    if not url.startswith(settings().dingtalk_session_webhook_prefix):
        url = ""
    return Conversation(
        channel=CHANNEL,
        id=_string(fields, "conversationId"),
        title=_string(fields, "conversationTitle"),
        reply_url=url,
        reply_until_ms=_integer(fields, "sessionWebhookExpiredTime") or 0,
    )


def inbound_message(config: Config, fields: dict) -> InboundMessage:
    """A callback (or the part of it a job keeps) as the chat layer's message: the same at ingress and in the worker."""
    from opsbot.authz.actors import dingtalk_sender
    from opsbot.chat.inbound.message import InboundMessage

    staff_id = fields.get("senderStaffId")
    return InboundMessage(
        channel=CHANNEL,
        msg_id=_string(fields, "msgId"),
        text=_text(fields),
        actor=dingtalk_sender(config, fields),
        conversation=conversation(fields),
        created_ms=_integer(fields, "createAt"),
        sender_nick=_string(fields, "senderNick"),
        # A published robot sends the staff id; before that, only the robot-scoped senderId.
        people_key="dingtalk_user_id" if staff_id else "dingtalk_sender_id",
        job_fields={k: fields[k] for k in JOB_FIELDS if k in fields},
    )


def response(config: Config, reply: Reply | None) -> dict:
    """The callback's response body: the reply in DingTalk's markdown, or nothing (an act already acknowledged)."""
    if reply is None:
        return EMPTY_REPLY
    from opsbot.channels import dingtalk as channel

    return channel.render(reply.as_message(config.language), config.person)


def handle_callback(http_event) -> dict:
    """The response body DingTalk shows in the conversation (`{"msgtype": "empty"}` shows nothing)."""
    body = check_envelope(http_event)
    timestamp, sign = signature.verify_callback(http_event.headers, get_parameter(settings().dingtalk_app_secret_param))
    fields = parse_json_object(body)
    msg_id = checked_shape(text_message_id, fields, "DingTalk callback")
    if not msg_id:
        return ignored_reply(f"DingTalk {shape.shown(fields['msgtype'])} messages are not read, only text")
    claim_signature(timestamp, sign, msg_id)
    return answer_callback(fields)


def answer_callback(fields: dict) -> dict:
    """A verified callback's response body, from the chat layer's answer."""
    # The chat layer and the config are only loaded for a verified message: the function's cold start verifies,
    # nothing more.
    from opsbot.chat.ingress import answer
    from opsbot.config import store

    config = store.load()
    if config.dingtalk_robot_code and _string(fields, "robotCode") != config.dingtalk_robot_code:
        raise Unauthorized("callback is for another robot (robotCode does not match)")
    return response(config, answer(config, inbound_message(config, fields)))
