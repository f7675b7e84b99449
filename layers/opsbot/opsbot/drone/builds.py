"""Facts about a Drone build that every capability reads the same way: its branch, its commit's title, and
whether it is a deployment."""

from __future__ import annotations

from opsbot.config.model import DEPLOYMENT_EVENTS

MAX_TITLE_CHARS = 120


def build_branch(build: dict) -> str:
    # A pull request build runs on its source branch; everything else on `target`.
    if build.get("event") == "pull_request":
        return build.get("source") or ""
    return build.get("target") or build.get("source") or ""


def commit_title(build: dict) -> str:
    """The first line of the commit message (raw: escape it for where it is shown), or the short sha."""
    title = (build.get("message") or "").strip().splitlines()[0:1]
    text = title[0] if title else (build.get("after") or "")[:8]
    return text if len(text) <= MAX_TITLE_CHARS else text[: MAX_TITLE_CHARS - 1] + "…"


def is_deployment(build: dict) -> bool:
    return build.get("event") in DEPLOYMENT_EVENTS
