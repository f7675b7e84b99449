"""Drone webhook deliveries: which ones are finished builds, and the fields the notifier needs."""

from __future__ import annotations

from opsbot.ingress.errors import BadRequest

KNOWN_EVENTS = {"build", "repo", "user"}
FINAL_STATUSES = {"success", "failure", "error", "killed"}


def finished_build(delivery: dict) -> tuple[dict, dict] | None:
    """(repo, build) when the delivery reports a finished build, else None.

    Drone sends `created` once and `updated` on every step change; a build is finished only when its status
    is final and `finished` is set. There is no `completed` action.
    """
    repo, build = delivery.get("repo"), delivery.get("build")
    if not isinstance(repo, dict) or not isinstance(build, dict):
        raise BadRequest("build event without repo or build object")
    if not isinstance(repo.get("slug"), str) or not isinstance(build.get("number"), int):
        raise BadRequest("build event without repo.slug or build.number")
    if not isinstance(build.get("status"), str):
        raise BadRequest("build event without a build.status string")
    if build.get("status") in FINAL_STATUSES and build.get("finished"):
        return repo, build
    return None


def dedupe_key(repo: dict, build: dict) -> str:
    """Drone never retries, but a proxy may; one build's final status notifies once."""
    return f"{repo['slug']}#{build['number']}#{build['status']}"
