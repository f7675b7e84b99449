"""set-image: read the environment's file at the deploy branch's head and write the release's image into it, per
format (promotion/formats.py: comments, order and quoting kept). Nothing is written to Git here: the outputs (the new
text, the file's last commit id as the precondition, the old and new image) are git-commit's or
open-merge-request's to write."""

from __future__ import annotations

from opsbot.markup import dingtalk as md
from opsbot.promotion import formats
from opsbot.promotion.files import DeployFile
from opsbot.promotion.registry import SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun


@step("set-image", DeployFile, "read the file at the deploy branch's head and pin the release's image in it")
def set_image(run: StepRun, where: DeployFile) -> StepResult:
    release = run.release
    found = run.deploy_repo.file_at(where.repo, where.file, where.branch)
    if found is None:
        raise StepFailed(
            run.t(
                f"部署仓库 {where.repo} 的 {where.branch} 分支上没有文件 {md(where.file, 200)}",
                f"the deploy repo {where.repo} has no file {md(where.file, 200)} on {where.branch}",
            )
        )
    text, last_commit = found
    target = where.target()
    try:
        old = formats.read(target, text)
        new_text = formats.write(target, text, release.tag, release.digest)
    except formats.FormatError as exc:
        raise StepFailed(
            run.t(
                f"{md(where.file, 200)} 无法按 {where.format} 修改：{md(exc, 200)}",
                f"{md(where.file, 200)} cannot be changed as {where.format}: {md(exc, 200)}",
            )
        ) from None
    new = formats.read(target, new_text)
    return StepResult(
        SUCCEEDED,
        {
            "last_commit_id": last_commit,
            "old": old.reference if old else "",
            "new": new.reference if new else "",
            "text": new_text,
            "unchanged": new_text == text,
        },
    )
