"""Starting a Drone build (promote, rollback, restart) at most once per request, across retries.

These calls are not idempotent: after a timeout or a 5xx, Drone may have started the build anyway, and a second
POST would deploy twice. So every start carries the request's id as a build parameter
(`OPSBOT_REQUEST_<ID>=1`: a name of its own, because Drone's restart keeps the parent's parameters over new ones),
and a marker is written before the first POST. An attempt that finds the marker asks Drone first whether a child
of the build carries the id, and posts again only if none does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from opsbot.drone.api import DroneClient
from opsbot.log import logger
from opsbot.state import idempotency, keys

LOOKBACK_BUILDS = 50  # the builds a lookup reads, newest first: a retry comes within minutes of the first try
_UNSAFE = re.compile(r"[^A-Z0-9_]")


def request_param(request_id: str) -> str:
    return "OPSBOT_REQUEST_" + _UNSAFE.sub("_", request_id.upper())[:48]


def find_started(drone: DroneClient, slug: str, parent: int, request_id: str) -> dict | None:
    """The build an earlier attempt of this request started from `parent`, if Drone has one."""
    param = request_param(request_id)
    for build in drone.builds(slug, per_page=LOOKBACK_BUILDS):
        if int(build.get("parent") or 0) == parent and param in (build.get("params") or {}):
            return build
    return None


def start_once(drone: DroneClient, slug: str, parent: int, request_id: str, start: Callable[[dict], dict]) -> dict:
    """`start(params)` for this request unless an earlier attempt already started it; the started build."""
    if not idempotency.claim(f"{keys.DRONE_REQUEST}{slug}#{request_id}"):
        # An earlier attempt got as far as the POST; whether Drone did it is Drone's to say.
        if found := find_started(drone, slug, parent, request_id):
            logger.info(
                "Drone already started this request; not posting again",
                extra={"repo": slug, "parent": parent, "build": found.get("number")},
            )
            return found
    return start({request_param(request_id): "1"})
