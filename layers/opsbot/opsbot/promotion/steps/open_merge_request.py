"""open-merge-request: for `mode: merge_request`, the release's commit on a branch of its own
(`opsbot/release-<id>`) and a merge request into the deploy branch. The merge request is the record reviewers see;
opsbot's approvals stay the gate (merge-merge-request merges it once they are given). Each part looks first: the
branch (GitLab says it exists), the commit (its trailer on that branch), the merge request (an open one from it)."""

from __future__ import annotations

from opsbot.gitlab.deploy_api import FILE_CHANGED
from opsbot.markup import gitlab as gitlab_text
from opsbot.peers import PeerRefused
from opsbot.promotion import trailers
from opsbot.promotion.files import DeployFile, own_commit
from opsbot.promotion.registry import SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun
from opsbot.promotion.steps.git_commit import author_of, commit_facts, lost_race


def branch_of(release_id: str) -> str:
    return f"opsbot/release-{release_id}"


@step("open-merge-request", DeployFile, "commit the new file on a branch of its own and open a merge request")
def open_merge_request(run: StepRun, where: DeployFile) -> StepResult:
    release, changed, repo = run.release, run.output("set-image"), run.deploy_repo
    branch = branch_of(release.id)
    if changed.get("unchanged") and not own_commit(repo, where, release.id):
        raise StepFailed(
            run.t(
                f"{where.file} 已经是 {changed['new']}，无需合并请求",
                f"{where.file} already pins {changed['new']}; no merge request needed",
            )
        )
    repo.create_branch(where.repo, branch, where.branch)  # False: a retry finds the branch it made
    commit = own_commit(repo, where, release.id, ref=branch)
    message = trailers.message(release, changed.get("old", ""), changed["new"])
    if commit is None:
        try:
            commit = repo.update_file(
                where.repo, branch, where.file, changed["text"], message, changed["last_commit_id"], author_of(release)
            )
        except PeerRefused as exc:
            if FILE_CHANGED not in exc.message:
                raise
            raise StepFailed(lost_race(run, where)) from None
    merge_request = repo.open_merge_request(where.repo, branch, where.branch)
    if merge_request is None:
        title = message.splitlines()[0]
        description = "\n".join(
            [
                f"opsbot release `{release.id}`: {gitlab_text(changed.get('old') or '-', 200)} → "
                f"{gitlab_text(changed['new'], 200)}.",
                "",
                "opsbot merges this when the approvals it asks for in chat are given (`approve "
                f"{release.id}`); merging it by hand deploys it too, without them.",
                "",
                "```",
                *message.strip().split("\n\n")[-1].splitlines(),
                "```",
            ]
        )
        merge_request = repo.create_merge_request(where.repo, branch, where.branch, title, description)
    return StepResult(
        SUCCEEDED,
        {
            **commit_facts(commit),
            "branch": branch,
            "merge_request": int(merge_request["iid"]),
            "merge_request_url": merge_request.get("web_url") or "",
        },
    )
