"""apply-flux: ask Flux to reconcile now (the `reconcile.fluxcd.io/requestedAt` annotation, as `flux reconcile
--with-source` sets it on the object and on its GitRepository), then read the object's status until Flux has handled
this request (`status.lastHandledReconcileAt`), its Ready condition is True and, for a Kustomization,
`status.lastAppliedRevision` is the deploy commit. Ready False with a reason fails the release with Flux's message.
The annotation's value is the release's own, so a retry finds its request made."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.markup import dingtalk as md
from opsbot.promotion.registry import FAILED, RUNNING, SUCCEEDED, StepResult, step
from opsbot.promotion.runner import StepRun
from opsbot.promotion.steps.apply_opsbot import cluster_of


@dataclass(frozen=True)
class FluxObject:
    cluster: str
    kind: str
    namespace: str
    name: str
    deadline_minutes: int = 10


def _ready(found: dict) -> tuple[str, str, str]:
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status", ""), condition.get("reason", ""), condition.get("message", "")
    return "Unknown", "", ""


@step("apply-flux", FluxObject, "ask Flux to reconcile the Kustomization or HelmRelease and follow its Ready condition")
def apply_flux(run: StepRun, where: FluxObject) -> StepResult:
    from opsbot.ops import kubernetes as k8s  # late: the Kubernetes client, for the jobs that use it

    cluster = cluster_of(run, where.cluster)
    value = f"opsbot-release-{run.release.id}"
    if run.poll == 0:
        found = k8s.flux_object(cluster, where.kind, where.namespace, where.name)
        source = (found.get("spec") or {}).get("sourceRef") or {}
        if source.get("kind") == "GitRepository":
            k8s.flux_reconcile(
                cluster, "GitRepository", source.get("namespace") or where.namespace, source["name"], value
            )
        k8s.flux_reconcile(cluster, where.kind, where.namespace, where.name, value)
        state = {"deadline": int(time.time()) + where.deadline_minutes * 60, "requested": value}
        return StepResult(RUNNING, {**state, "rollout": "reconcile requested"})
    found = k8s.flux_object(cluster, where.kind, where.namespace, where.name)
    status = found.get("status") or {}
    ready, reason, message = _ready(found)
    handled = status.get("lastHandledReconcileAt") == value
    revision = str(status.get("lastAppliedRevision") or "")
    applied = where.kind != "Kustomization" or revision.endswith(run.deploy_commit)
    name = f"{where.kind} {where.namespace}/{where.name}"
    state = {**run.state, "revision": revision}
    if handled and ready == "False" and reason not in ("Progressing", "DependencyNotReady"):
        said = md(f"{reason}: {message}", 300)
        return StepResult(
            FAILED, {**state, "rollout": "failed"}, run.t(f"{name} 没有就绪：{said}", f"{name} is not ready: {said}")
        )
    if handled and ready == "True" and applied:
        return StepResult(
            SUCCEEDED,
            {**state, "rollout": "done"},
            run.t(f"{name} 已应用 {md(revision, 80)}", f"{name} applied {md(revision, 80)}"),
        )
    if time.time() > run.state["deadline"]:
        said = md(f"Ready={ready} {reason}, {revision or 'nothing applied'}", 200)
        return StepResult(
            FAILED,
            {**state, "rollout": "stuck"},
            run.t(f"{name} 在期限内没有完成（{said}）", f"{name} did not apply the commit by its deadline ({said})"),
        )
    return StepResult(RUNNING, {**state, "rollout": f"Ready={ready}"})
