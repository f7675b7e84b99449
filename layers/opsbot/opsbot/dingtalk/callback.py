"""POST /webhooks/dingtalk: an @opsbot message from a group, verified once, then answered by the chat layer."""
from __future__ import annotations

from opsbot.dingtalk import signature
from opsbot.ingress.errors import BadRequest
from opsbot.ingress.request import check_envelope, parse_json_object
from opsbot.secrets import get_parameter
from opsbot.settings import settings


def handle_callback(http_event) -> dict:
    """The response body DingTalk shows in the conversation (`{"msgtype": "empty"}` shows nothing)."""
    body = check_envelope(http_event)
    # DingTalk's sign covers only the timestamp, not the body; msgId dedupe stops replays of acts, and replies
    # only ever go to DingTalk's own session URLs or configured robots.
    signature.verify_callback(http_event.headers, get_parameter(settings().dingtalk_app_secret_param))
    message = parse_json_object(body)
    msg_id = message.get("msgId")
    if not isinstance(msg_id, str) or not msg_id:
        raise BadRequest("callback without msgId")
    from opsbot.chat.ingress import answer  # the chat layer is only loaded for a verified message

    return answer(message, msg_id)
