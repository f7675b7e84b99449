"""git-commit: the release as one commit on the deploy branch, through GitLab's commits API.

- Its author is the requester's git identity; its trailers name the release, the build and its link, the source
  commit, the image, the requester, each approver and where it was asked (promotion/trailers.py).
- Exactly once: it looks for its own release's trailer in the file's history before it writes, so a write whose
  answer was lost, or a worker stopped after it, is found rather than made again.
- No lost update: the file's last commit id (from set-image) is the precondition. When another commit changed the
  file since (two releases racing), GitLab refuses; the step reads the file's history again to name that commit and
  fails the release, telling the requester, and nothing of theirs is written over the other.
"""

from __future__ import annotations

from opsbot.gitlab.deploy_api import FILE_CHANGED
from opsbot.markup import dingtalk as md
from opsbot.peers import PeerRefused
from opsbot.promotion import trailers
from opsbot.promotion.files import DeployFile, own_commit
from opsbot.promotion.registry import SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun


def author_of(release) -> tuple[str, str]:
    requester = release.requester
    return (requester.get("git_name") or requester.get("name") or "", requester.get("git_email") or "")


def commit_facts(commit: dict) -> dict:
    return {"commit": commit["id"], "short": commit["id"][:8], "web_url": commit.get("web_url") or ""}


@step("git-commit", DeployFile, "commit the new file on the deploy branch (once: its trailer is looked for first)")
def git_commit(run: StepRun, where: DeployFile) -> StepResult:
    release, changed = run.release, run.output("set-image")
    if existing := own_commit(run.deploy_repo, where, release.id):
        return StepResult(SUCCEEDED, commit_facts(existing))
    if changed.get("unchanged"):
        return StepResult(
            SUCCEEDED,
            {"commit": "", "unchanged": True},
            run.t(
                f"{where.file} 已经是 {changed['new']}，无需提交",
                f"{where.file} already pins {changed['new']}; nothing to commit",
            ),
        )
    message = trailers.message(release, changed.get("old", ""), changed["new"])
    try:
        made = run.deploy_repo.update_file(
            where.repo,
            where.branch,
            where.file,
            changed["text"],
            message,
            changed["last_commit_id"],
            author_of(release),
        )
    except PeerRefused as exc:
        if FILE_CHANGED not in exc.message:
            raise
        raise StepFailed(lost_race(run, where)) from None
    return StepResult(SUCCEEDED, commit_facts(made))


def lost_race(run: StepRun, where: DeployFile, ref: str = "") -> str:
    """What the requester is told when another commit changed the file after it was read: that commit, re-read."""
    newest = run.deploy_repo.file_history(where.repo, where.file, ref or where.branch, per_page=1)
    other = newest[0] if newest else {}
    by = trailers.release_of(other)
    who = md(other.get("author_name") or "?", 60)
    what = f"`{str(other.get('id', ''))[:8]}` ({who}" + (f", release {by})" if by else ")")
    return run.t(
        f"部署文件在读取后被另一个提交修改了：{what}。没有覆盖它，本次发布未提交；如仍需要，请重新发起。",
        f"the deploy file changed after it was read: {what}. Nothing was written over it and this release "
        "committed nothing; ask again if you still want it.",
    )
