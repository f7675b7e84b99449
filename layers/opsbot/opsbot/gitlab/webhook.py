"""POST /webhooks/gitlab: constant-time token check, dedupe on GitLab's delivery ids, enqueue."""
from __future__ import annotations

import hashlib
import hmac

from opsbot.ingress.accept import Outcome, accept, ignored
from opsbot.ingress.errors import BadRequest, Unauthorized
from opsbot.ingress.request import check_envelope, parse_json_object
from opsbot.secrets import get_parameter
from opsbot.settings import settings

# Events later features act on, and the job kind each becomes.
HANDLED_EVENTS = {
    "Push Hook": "gitlab.push",
    "Tag Push Hook": "gitlab.tag_push",
    "Merge Request Hook": "gitlab.merge_request",
    "Note Hook": "gitlab.note",
    "Pipeline Hook": "gitlab.pipeline",
}
# Events GitLab may send that opsbot does not act on: acknowledged and ignored.
OTHER_EVENTS = {
    "Issue Hook", "Confidential Issue Hook", "Confidential Note Hook", "Job Hook", "Wiki Page Hook",
    "Deployment Hook", "Feature Flag Hook", "Release Hook", "Emoji Hook", "Resource Access Token Hook",
    "Member Hook", "Subgroup Hook", "Project Hook", "Vulnerability Hook", "System Hook",
}


def verify_token(headers, expected: str) -> None:
    given = headers.get("x-gitlab-token")
    if not given:
        raise Unauthorized("missing X-Gitlab-Token")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise Unauthorized("X-Gitlab-Token does not match")


def dedupe_key(headers, body: bytes) -> str:
    """GitLab's Idempotency-Key (17.4+), else its event and webhook UUIDs, else the body itself."""
    if key := headers.get("idempotency-key"):
        return key
    event_uuid, webhook_uuid = headers.get("x-gitlab-event-uuid"), headers.get("x-gitlab-webhook-uuid")
    if event_uuid:
        return f"{event_uuid}#{webhook_uuid or ''}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


def handle_delivery(http_event) -> Outcome:
    body = check_envelope(http_event)
    verify_token(http_event.headers, get_parameter(settings().gitlab_webhook_token_param))
    payload = parse_json_object(body)
    event_name = http_event.headers.get("x-gitlab-event")
    if not event_name:
        raise BadRequest("missing X-Gitlab-Event header")
    if event_name in OTHER_EVENTS:
        return ignored(f"GitLab {event_name} is not handled")
    if event_name not in HANDLED_EVENTS:
        raise BadRequest(f"unknown GitLab event {event_name!r}")
    return accept("gitlab", dedupe_key(http_event.headers, body), HANDLED_EVENTS[event_name], payload)
