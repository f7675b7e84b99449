"""What the deploy repo's history says about an environment: its file's commits, newest first, each read as a
release (opsbot's trailers), a revert of one (GitLab's revert, `This reverts commit …`) or a change by hand. `status`,
`releases`, the drift check and `rollback` read it; Git is the record of what was released, by whom, approved by
whom, and when."""

from __future__ import annotations

from dataclasses import dataclass, field

from opsbot.config.deploy import GitOpsTarget
from opsbot.i18n import t
from opsbot.promotion import trailers

RELEASE, REVERT, HAND = "release", "revert", "hand"
LOOK_BACK = 50  # how many of the file's commits a rollback looks through for the release to undo


@dataclass
class Entry:
    commit: str
    web_url: str
    title: str
    author: str
    at: str  # ISO 8601, as GitLab gives it
    kind: str  # release | revert | hand
    release: str = ""
    action: str = ""
    build: int = 0
    source: str = ""
    image: str = ""
    requester: str = ""
    approvers: list[str] = field(default_factory=list)
    via: str = ""
    reverts: str = ""  # a revert: the sha it undoes

    @property
    def short(self) -> str:
        return self.commit[:8]


def entry(commit: dict) -> Entry:
    found = trailers.parse(commit.get("message") or "")
    base = Entry(
        commit=str(commit.get("id") or ""),
        web_url=str(commit.get("web_url") or ""),
        title=str(commit.get("title") or ""),
        author=str(commit.get("author_name") or ""),
        at=str(commit.get("committed_date") or commit.get("created_at") or ""),
        kind=HAND,
    )
    if release := trailers.first(found, trailers.RELEASE):
        build = trailers.first(found, trailers.BUILD)
        base.kind, base.release = RELEASE, release
        base.action = trailers.first(found, trailers.ACTION) or "deploy"
        base.build = int(build) if build.isdigit() else 0
        base.source = trailers.first(found, trailers.SOURCE)
        base.image = trailers.first(found, trailers.IMAGE)
        base.requester = trailers.first(found, trailers.REQUESTED_BY).split(" <")[0]
        base.approvers = list(found.get(trailers.APPROVED_BY) or [])
        base.via = trailers.first(found, trailers.ASKED_VIA)
    elif reverted := trailers.reverted(commit):
        base.kind, base.reverts = REVERT, reverted
    return base


def entries(repo, target: GitOpsTarget, per_page: int = 20, page: int = 1) -> list[Entry]:
    """A page of the environment's history, newest first."""
    return [entry(c) for c in repo.file_history(target.repo, target.file, target.branch, per_page=per_page, page=page)]


class NothingToRollBack(Exception):
    """No release of the environment is left to revert; the message says so."""


@dataclass(frozen=True)
class Undo:
    commit: str  # the release commit to revert
    release: str  # its release id
    back_to: Entry | None  # the release that ran before it, when there was one (its build is checked by the core)


def rollback_target(repo, target: GitOpsTarget, language: str) -> Undo:
    """The newest release commit of the environment that no later commit reverted, and the release before it."""
    reverted: set[str] = set()
    found: list[Entry] = [e for e in entries(repo, target, per_page=LOOK_BACK)]
    for index, item in enumerate(found):
        if item.kind == REVERT:
            reverted.add(item.reverts)
            continue
        if item.kind != RELEASE or any(item.commit.startswith(r) for r in reverted):
            continue
        before = next(
            (e for e in found[index + 1 :] if e.kind == RELEASE and not any(e.commit.startswith(r) for r in reverted)),
            None,
        )
        return Undo(item.commit, item.release, before)
    raise NothingToRollBack(
        t(
            language,
            f"{target.file} 最近 {LOOK_BACK} 个提交里没有可以回滚的发布。",
            f"no release to roll back in the last {LOOK_BACK} commits of {target.file}.",
        )
    )


def find_release(repo, target: GitOpsTarget, release_id: str) -> Entry | None:
    """A release of the environment by its id, from its commit's trailer."""
    return next((e for e in entries(repo, target, per_page=LOOK_BACK) if e.release == release_id.lower()), None)
