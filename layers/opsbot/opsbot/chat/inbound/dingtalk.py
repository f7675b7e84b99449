"""POST /webhooks/dingtalk: an @opsbot message from a group, verified once, then answered by the chat layer.

DingTalk's sign covers only the timestamp, not the body. So a (timestamp, sign) pair is accepted for one message
only: the first callback that carries it binds it to its msgId, and the same pair with any other msgId is refused
(401) and logged. DingTalk redelivering the same message (same msgId) still passes, and msgId dedupe makes it
act once. What remains is the limit the README states: whoever can see a callback before DingTalk delivers it
could race it with a forged body.
"""

from __future__ import annotations

import hashlib

from opsbot.dingtalk import signature
from opsbot.ingress import shape
from opsbot.ingress.errors import Unauthorized
from opsbot.ingress.request import check_envelope, checked_shape, parse_json_object
from opsbot.log import logger
from opsbot.secrets import get_parameter
from opsbot.settings import settings
from opsbot.state import idempotency, keys

# A pair is fresh for an hour either side of now: remember it until its timestamp is stale for good.
SIGN_MEMORY_SECONDS = signature.MAX_SKEW_MS // 1000 + 300
# The callback's fields the chat layer and the worker read (chat/ingress.py, authz/actors.py, delivery/post.py).
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


def handle_callback(http_event) -> dict:
    """The response body DingTalk shows in the conversation (`{"msgtype": "empty"}` shows nothing)."""
    body = check_envelope(http_event)
    timestamp, sign = signature.verify_callback(http_event.headers, get_parameter(settings().dingtalk_app_secret_param))
    message = parse_json_object(body)
    msg_id = checked_shape(text_message_id, message, "DingTalk callback")
    if not msg_id:
        return ignored_reply(f"DingTalk {shape.shown(message['msgtype'])} messages are not read, only text")
    claim_signature(timestamp, sign, msg_id)
    # The chat layer is only loaded for a verified message: the function's cold start verifies, nothing more.
    from opsbot.chat.ingress import answer

    return answer(message, msg_id)
