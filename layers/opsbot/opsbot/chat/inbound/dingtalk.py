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
from opsbot.ingress.errors import BadRequest, Unauthorized
from opsbot.ingress.request import check_envelope, parse_json_object
from opsbot.log import logger
from opsbot.secrets import get_parameter
from opsbot.settings import settings
from opsbot.state import idempotency, keys

# A pair is fresh for an hour either side of now: remember it until its timestamp is stale for good.
SIGN_MEMORY_SECONDS = signature.MAX_SKEW_MS // 1000 + 300


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
    msg_id = message.get("msgId")
    if not isinstance(msg_id, str) or not msg_id:
        raise BadRequest("callback without msgId")
    claim_signature(timestamp, sign, msg_id)
    # The chat layer is only loaded for a verified message: the function's cold start verifies, nothing more.
    from opsbot.chat.ingress import answer

    return answer(message, msg_id)
