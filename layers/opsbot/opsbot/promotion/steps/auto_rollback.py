"""auto-rollback: with `auto_rollback: true`, a release whose rollout or verification failed is reverted at once, as
a release by opsbot itself (audited, reported like any other): GitLab's revert of its deploy commit, applied and
verified again. Never for a release that committed nothing, and never for a rollback that was itself automatic (no
loop)."""

from __future__ import annotations

from dataclasses import dataclass

from opsbot import audit
from opsbot.authz.core import ALLOW
from opsbot.promotion import start
from opsbot.promotion.records import REVERT
from opsbot.promotion.registry import SUCCEEDED, StepResult, step
from opsbot.promotion.runner import StepRun

AUTO = "auto"


@dataclass(frozen=True)
class AutoRollback:
    enabled: bool = False


@step("auto-rollback", AutoRollback, "when enabled and a step failed: revert the deploy commit, as a release by opsbot")
def auto_rollback(run: StepRun, config: AutoRollback) -> StepResult:
    release = run.release
    commit = run.deploy_commit
    if not release.failed or not config.enabled or release.asked_via == AUTO or not commit:
        return StepResult(SUCCEEDED, {"skipped": True})
    project = run.project
    if project is None or release.environment not in project.environments:
        return StepResult(SUCCEEDED, {"skipped": True})
    rollback_id = start.auto_rollback_id(release.id)
    _audit(release, rollback_id, commit)
    start.begin(
        run.config,
        project,
        release.environment,
        rollback_id,
        REVERT,
        start.OPSBOT,
        AUTO,
        release.language,
        reverts=commit,
        reverts_release=release.id,
        conversation=release.conversation,
    )
    return StepResult(
        SUCCEEDED,
        {"release": rollback_id},
        run.t(f"已回滚：release {rollback_id}", f"rolled back: release {rollback_id}"),
    )


def _audit(release, rollback_id: str, commit: str) -> None:
    """The automatic rollback in the audit log: opsbot is the actor, the config's `auto_rollback` the rule."""
    record = audit.AuditRecord(
        id=rollback_id,
        at_ms=release.created,
        who="opsbot",
        who_name="opsbot",
        where="opsbot",
        where_title="auto_rollback",
        command="rollback",
        arguments={"project": release.project, "env": release.environment, "revert": commit[:12]},
        project=release.project,
        via="opsbot",
        target=f"{release.project} → {release.environment} revert {commit[:8]}",
        decision=ALLOW,
        reason=f"auto_rollback: release {release.id} failed: {release.failed}"[:500],
    )
    audit.finish(record, "succeeded", f"auto rollback of release {release.id} as {rollback_id}")
