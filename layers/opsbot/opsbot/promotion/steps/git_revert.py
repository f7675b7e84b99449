"""git-revert: a rollback as GitLab's revert of the release commit it undoes (POST …/commits/:sha/revert), on the
deploy branch. Exactly once: a revert of that commit already in the file's history is this release's. The image
before and after are read from the file around the revert, for the card."""

from __future__ import annotations

from opsbot.markup import dingtalk as md
from opsbot.peers import PeerRefused
from opsbot.promotion import formats, trailers
from opsbot.promotion.files import HISTORY_LOOKUP, DeployFile
from opsbot.promotion.registry import SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun
from opsbot.promotion.steps.git_commit import commit_facts


def _image(repo, where: DeployFile, ref: str) -> str:
    found = repo.file_at(where.repo, where.file, ref)
    if found is None:
        return ""
    try:
        pinned = formats.read(where.target(), found[0])
    except formats.FormatError:
        return ""
    return pinned.reference if pinned else ""


@step("git-revert", DeployFile, "revert the release commit being rolled back, through GitLab's revert API (once)")
def git_revert(run: StepRun, where: DeployFile) -> StepResult:
    repo, undone = run.deploy_repo, run.release.reverts
    history = repo.file_history(where.repo, where.file, where.branch, per_page=HISTORY_LOOKUP)
    existing = next((c for c in history if trailers.reverted(c) and undone.startswith(trailers.reverted(c))), None)
    if existing is not None:
        parent = (existing.get("parent_ids") or [""])[0]
        return StepResult(
            SUCCEEDED,
            {
                **commit_facts(existing),
                "old": _image(repo, where, parent) if parent else "",
                "new": _image(repo, where, existing["id"]),
            },
        )
    old = _image(repo, where, where.branch)
    try:
        made = repo.revert(where.repo, undone, where.branch)
    except PeerRefused as exc:
        if exc.status in (400, 409, 422):
            raise StepFailed(
                run.t(
                    f"GitLab 不能自动回滚提交 {undone[:8]}：{md(exc.message, 200)}",
                    f"GitLab cannot revert {undone[:8]} by itself: {md(exc.message, 200)}",
                )
            ) from None
        raise
    return StepResult(SUCCEEDED, {**commit_facts(made), "old": old, "new": _image(repo, where, made["id"])})
