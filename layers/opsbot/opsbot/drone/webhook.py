"""POST /webhooks/drone: verify the HTTP Signature, keep finished builds, enqueue one job each."""

from __future__ import annotations

from opsbot.drone import events, signature
from opsbot.ingress.accept import Outcome, accept, ignored
from opsbot.ingress.errors import BadRequest
from opsbot.ingress.request import check_envelope, checked_shape, parse_json_object
from opsbot.ingress.shape import shown
from opsbot.jobs import kinds
from opsbot.secrets import get_parameter
from opsbot.settings import settings


def handle_delivery(http_event) -> Outcome:
    body = check_envelope(http_event)
    signature.verify(http_event.headers, body, get_parameter(settings().drone_webhook_secret_param))
    delivery = parse_json_object(body)
    event_type = http_event.headers.get("x-drone-event") or delivery.get("event")
    if not isinstance(event_type, str) or event_type not in events.KNOWN_EVENTS:
        raise BadRequest(f"unknown Drone event {shown(event_type)}")
    if event_type != "build":
        return ignored(f"Drone {event_type} events are not handled")
    finished = checked_shape(events.finished_build, delivery, "Drone build event")
    if finished is None:
        return ignored("build is not finished")
    repo, build = finished
    # The job carries what the notifier needs; the rest of the repo object is dropped to stay small.
    payload = {"repo": repo, "build": build, "system": delivery.get("system") or {}}
    return accept("drone", events.dedupe_key(repo, build), kinds.DRONE_BUILD_FINISHED, payload)
