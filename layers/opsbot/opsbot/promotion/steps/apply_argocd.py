"""apply-argocd: ask Argo CD to sync the Application to the release's deploy commit, then follow it until it is
Synced at that revision, Healthy and its operation Succeeded; a Failed or Errored operation or a Degraded
application fails the release with Argo CD's own message. Looked up first: an operation already running or done for
this revision is not asked for again."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.markup import dingtalk as md
from opsbot.promotion.registry import FAILED, RUNNING, SUCCEEDED, StepResult, step
from opsbot.promotion.runner import StepRun


@dataclass(frozen=True)
class Application:
    application: str
    deadline_minutes: int = 10


@step("apply-argocd", Application, "sync the Argo CD Application to the deploy commit and follow sync and health")
def apply_argocd(run: StepRun, where: Application) -> StepResult:
    from opsbot.argocd import api as argocd  # late: only release jobs talk to Argo CD

    client = argocd.client()
    revision = run.deploy_commit
    if run.poll == 0:
        facts = argocd.facts(client.application(where.application))
        asked = facts["operation_revision"] == revision and facts["phase"] in ("Running", "Succeeded")
        if not asked and not (facts["sync"] == "Synced" and facts["revision"] == revision):
            client.sync(where.application, revision)
        state = {"deadline": int(time.time()) + where.deadline_minutes * 60, "synced": not asked}
        return StepResult(RUNNING, {**state, "rollout": "sync requested"})
    facts = argocd.facts(client.application(where.application))
    name = f"Argo CD {where.application}"
    said = f"{facts['sync']}/{facts['health']}" + (f", {facts['phase']}" if facts["phase"] else "")
    state = {**run.state, "images": facts["images"][:5]}
    if facts["phase"] in ("Failed", "Error") and facts["operation_revision"] == revision:
        message = md(facts["message"] or facts["phase"], 300)
        return StepResult(
            FAILED,
            {**state, "rollout": "failed"},
            run.t(f"{name} 同步失败：{message}", f"{name} sync failed: {message}"),
        )
    if facts["health"] == "Degraded" and facts["revision"] == revision:
        return StepResult(
            FAILED, {**state, "rollout": "degraded"}, run.t(f"{name} 不健康：{said}", f"{name} is degraded: {said}")
        )
    if (
        facts["sync"] == "Synced"
        and facts["revision"] == revision
        and facts["health"] == "Healthy"
        and facts["phase"] in ("", "Succeeded")
    ):
        return StepResult(
            SUCCEEDED,
            {**state, "rollout": "done"},
            run.t(f"{name} 已同步且健康（{said}）", f"{name} is synced and healthy ({said})"),
        )
    if time.time() > run.state["deadline"]:
        return StepResult(
            FAILED,
            {**state, "rollout": "stuck"},
            run.t(
                f"{name} 在期限内没有同步完成（{said}）", f"{name} was not synced and healthy by its deadline ({said})"
            ),
        )
    return StepResult(RUNNING, {**state, "rollout": said})
