"""merge-merge-request: once the approvals the authorization core asked for are given, merge the release's merge
request at its commit (GitLab answers 409 when the branch moved past it: someone pushed to it, so it is not merged).
The merge request is the record: its description gets who approved in opsbot (an idempotent PUT) before it is
merged. A retry finds it merged and takes its merge commit."""

from __future__ import annotations

from opsbot.markup import dingtalk as md
from opsbot.markup import gitlab as gitlab_text
from opsbot.peers import PeerRefused
from opsbot.promotion.files import DeployFile
from opsbot.promotion.registry import SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun


def _merged(found: dict) -> StepResult:
    commit = found.get("merge_commit_sha") or found.get("squash_commit_sha") or found.get("sha") or ""
    # The merge request's page is …/-/merge_requests/<iid>; its commit's is …/-/commit/<sha> beside it.
    page = str(found.get("web_url") or "")
    link = page.split("/-/merge_requests/")[0] + f"/-/commit/{commit}" if "/-/merge_requests/" in page else ""
    return StepResult(SUCCEEDED, {"commit": commit, "short": commit[:8], "web_url": link})


@step("merge-merge-request", DeployFile, "merge the release's merge request once its approvals are given")
def merge_merge_request(run: StepRun, where: DeployFile) -> StepResult:
    opened = run.output("open-merge-request")
    repo, iid = run.deploy_repo, int(opened["merge_request"])
    found = repo.merge_request(where.repo, iid)
    if found.get("state") == "merged":
        return _merged(found)
    if found.get("state") != "opened":
        raise StepFailed(
            run.t(
                f"合并请求 !{iid} 已是 {md(found.get('state'), 20)}",
                f"merge request !{iid} is {md(found.get('state'), 20)}",
            )
        )
    if found.get("sha") != opened["commit"]:
        raise StepFailed(
            run.t(
                f"合并请求 !{iid} 在批准后又被推送了提交，不会合并",
                f"merge request !{iid} got other commits after the approval; it is not merged",
            )
        )
    approved = ", ".join(run.release.approvers) or "-"
    marker = "\n\nApproved in opsbot by: "
    description = str(found.get("description") or "").split(marker)[0] + marker + gitlab_text(approved, 300)
    if found.get("description") != description:
        repo.update_merge_request(where.repo, iid, description=description)
    try:
        merged = repo.merge(where.repo, iid, opened["commit"], squash=False)
    except PeerRefused as exc:
        if exc.status in (405, 406, 409, 422):
            raise StepFailed(
                run.t(
                    f"GitLab 不能合并 !{iid}：{md(exc.message, 200)}",
                    f"GitLab cannot merge !{iid}: {md(exc.message, 200)}",
                )
            ) from None
        raise
    return _merged({**merged, "web_url": opened.get("merge_request_url", "")})
