"""Facts about a Drone build that every capability reads the same way: its branch, its commit's title, whether it
is a deployment, and its status in words."""

from __future__ import annotations

from opsbot.config.model import DEPLOYMENT_EVENTS
from opsbot.i18n import t

MAX_TITLE_CHARS = 120
# Drone's build and stage statuses (core/status.go), as a person reads them.
STATUS_WORDS = {
    "pending": ("等待中", "pending"),
    "running": ("运行中", "running"),
    "success": ("成功", "success"),
    "failure": ("失败", "failure"),
    "error": ("出错", "error"),
    "killed": ("已取消", "killed"),
    "skipped": ("已跳过", "skipped"),
    "blocked": ("待批准", "blocked"),
    "declined": ("已拒绝", "declined"),
    "waiting_on_dependencies": ("等待依赖", "waiting on dependencies"),
}


def status_word(status: str, language: str) -> str:
    """A Drone status in `language`; one Drone added later, as Drone says it (escape it for where it is shown)."""
    zh, en = STATUS_WORDS.get(status, (status, status))
    return t(language, zh, en)


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
