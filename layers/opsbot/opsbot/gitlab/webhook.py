"""POST /webhooks/gitlab: constant-time token check, dedupe on GitLab's delivery ids, enqueue.

The token is the shared one (`GITLAB_WEBHOOK_TOKEN_PARAM`), or, for a project whose config sets
`webhook_token`, that project's own: then only its own is accepted for deliveries about it, so a token leaked from
another project's hook settings cannot speak for it. Which project a delivery is about is read from the body
(`project.path_with_namespace`) before the token is checked, only to choose the token; nothing else of an
unverified body is used.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from opsbot.gitlab import events
from opsbot.ingress.accept import Outcome, accept, ignored
from opsbot.ingress.errors import BadRequest, Unauthorized
from opsbot.ingress.request import check_envelope, checked_shape, parse_json_object
from opsbot.ingress.shape import shown
from opsbot.jobs import kinds
from opsbot.secrets import get_parameter, resolve
from opsbot.settings import settings

# Events opsbot acts on: the job kind each becomes, and the parser of its shape, the worker's own.
HANDLED_EVENTS = {
    "Push Hook": (kinds.GITLAB_PUSH, events.Push.from_payload),
    "Tag Push Hook": (kinds.GITLAB_TAG_PUSH, events.Push.from_tag_payload),
    "Merge Request Hook": (kinds.GITLAB_MERGE_REQUEST, events.MergeRequestEvent.from_payload),
    "Note Hook": (kinds.GITLAB_NOTE, events.NoteEvent.from_payload),
    "Pipeline Hook": (kinds.GITLAB_PIPELINE, events.PipelineEvent.from_payload),
}
# Events GitLab may send that opsbot does not act on: acknowledged and ignored.
OTHER_EVENTS = {
    "Issue Hook",
    "Confidential Issue Hook",
    "Confidential Note Hook",
    "Job Hook",
    "Wiki Page Hook",
    "Deployment Hook",
    "Feature Flag Hook",
    "Release Hook",
    "Emoji Hook",
    "Resource Access Token Hook",
    "Member Hook",
    "Subgroup Hook",
    "Project Hook",
    "Vulnerability Hook",
    "System Hook",
}


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _delivery_project(body: bytes) -> str:
    """`project.path_with_namespace` of a body not yet verified, or "" (not JSON, no project)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    project = payload.get("project") if isinstance(payload, dict) else None
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    return path if isinstance(path, str) else ""


def own_token_reference(body: bytes) -> str:
    """The `webhook_token` of the configured project the delivery is about; "" when it has none (the shared token
    applies), or when no config has been loaded yet (no project has its own token then)."""
    from opsbot.config import store  # config is read only once a token has been given, and cached

    try:
        config = store.load()
    except LookupError:
        return ""
    if not any(project.webhook_token for project in config.projects.values()):
        return ""  # the usual case: no body to look into
    project = config.project_for_repo(_delivery_project(body))
    return project.webhook_token if project is not None else ""


def verify_token(headers, body: bytes) -> None:
    """401 unless X-Gitlab-Token is the token for this delivery's project; compared in constant time."""
    given = headers.get("x-gitlab-token")
    if not given:
        raise Unauthorized("missing X-Gitlab-Token")
    own = own_token_reference(body)
    if not own:
        if not _matches(given, get_parameter(settings().gitlab_webhook_token_param)):
            raise Unauthorized("X-Gitlab-Token does not match")
        return
    if _matches(given, resolve(own)):
        return
    if _matches(given, get_parameter(settings().gitlab_webhook_token_param)):
        raise Unauthorized("this project has its own webhook token")
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
    verify_token(http_event.headers, body)
    payload = parse_json_object(body)
    event_name = http_event.headers.get("x-gitlab-event")
    if not event_name:
        raise BadRequest("missing X-Gitlab-Event header")
    if event_name in OTHER_EVENTS:
        return ignored(f"GitLab {event_name} is not handled")
    if event_name not in HANDLED_EVENTS:
        raise BadRequest(f"unknown GitLab event {shown(event_name)}")
    kind, parse = HANDLED_EVENTS[event_name]
    try:
        checked_shape(parse, payload, event_name)
    except events.NotHandled as exc:
        return ignored(f"GitLab {event_name}: {exc}")
    return accept("gitlab", dedupe_key(http_event.headers, body), kind, payload)
