"""POST /webhooks/dingtalk: an @opsbot message from a group, verified and queued once per msgId."""
from __future__ import annotations

from opsbot.dingtalk import signature
from opsbot.ingress.accept import Outcome, accept
from opsbot.ingress.errors import BadRequest
from opsbot.ingress.request import check_envelope, parse_json_object
from opsbot.secrets import get_parameter
from opsbot.settings import settings

JOB_KIND = "dingtalk.message"
# DingTalk shows nothing in the chat for this reply; the answer, if any, is posted later.
EMPTY_REPLY = {"msgtype": "empty"}


def handle_callback(http_event) -> Outcome:
    body = check_envelope(http_event)
    # DingTalk's sign covers only the timestamp, not the body; msgId dedupe below stops replays within the hour.
    signature.verify_callback(http_event.headers, get_parameter(settings().dingtalk_app_secret_param))
    message = parse_json_object(body)
    msg_id = message.get("msgId")
    if not isinstance(msg_id, str) or not msg_id:
        raise BadRequest("callback without msgId")
    return accept("dingtalk", msg_id, JOB_KIND, message)
