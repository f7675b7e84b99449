"""report: the release's one result card to the project's robots (once, whatever the retries: delivery's post_once
under the release's key), its record in the releases table brought up to date (deploy commit, merge request,
rollout, verification, outcome, when it finished), its result in the audit log, and the deploy count."""

from __future__ import annotations

import time

from opsbot import audit, metrics
from opsbot.authz.core import ALLOW
from opsbot.delivery.post import post_once
from opsbot.promotion import card, records
from opsbot.promotion.registry import SUCCEEDED, NoConfig, StepResult, step
from opsbot.promotion.runner import StepRun


def _outcome(release, prefix: str) -> str:
    for spec in release.plan:
        if spec["kind"].startswith(prefix):
            found = release.output(spec["name"])
            return found.get("status") or "not run"
    return "none"


@step("report", NoConfig, "post the result card to the project's robots once, and record the release's outcome")
def report(run: StepRun, _config: NoConfig) -> StepResult:
    release = run.release
    reply = card.result(run.config, release)
    where = post_once(run.config, reply, f"release#{release.id}")  # the project's group, wherever it was asked
    outcome = "failed" if release.failed else "succeeded"
    opened = release.output("open-merge-request")
    records.write_record(
        release,
        outcome,
        deploy_commit=run.deploy_commit,
        merge_request=opened.get("merge_request_url", ""),
        rollout=_outcome(release, "apply-"),
        verification=_outcome(release, "verify-"),
        rolled_back_by=release.output("auto-rollback").get("release", ""),
        finished_ms=str(int(time.time() * 1000)),
    )
    record = audit.AuditRecord(
        id=f"{release.id}-result",
        at_ms=release.created,
        who=str(release.requester.get("id", ""))[:128],
        who_name=str(release.requester.get("name", ""))[:64],
        where=str(release.conversation.get("id") or release.asked_via)[:128],
        where_title=str(release.conversation.get("title") or "")[:128],
        command="rollback" if release.action != "deploy" else "deploy",
        arguments={"project": release.project, "env": release.environment, "release": release.id},
        project=release.project,
        target=f"{release.project} → {release.environment} {release.image}:{release.tag}"[:300],
        decision=ALLOW,
    )
    audit.finish(record, outcome, reply.detail)
    metrics.count(metrics.DEPLOYS, Environment=release.environment, Outcome=f"gitops {outcome}")
    return StepResult(SUCCEEDED, {"posted": where})
