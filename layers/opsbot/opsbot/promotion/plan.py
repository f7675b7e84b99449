"""A release's plan: its steps in order, each with its kind and its config, made from the environment's `deploy:`
when the release starts (a snapshot: a config push during the release does not change what it does).

    commit mode:        set-image, git-commit,                               apply-*, verify-*, auto-rollback, report
    merge_request mode: set-image, open-merge-request, merge-merge-request*, apply-*, verify-*, auto-rollback, report
    a revert:           git-revert,                                          apply-*, verify-*, auto-rollback, report

(* waits for the approvals the authorization core asked for; auto-rollback and report run even when a step failed.)
"""

from __future__ import annotations

from opsbot.config.deploy import GitOpsTarget
from opsbot.promotion.files import DeployFile
from opsbot.promotion.records import REVERT


def _step(kind: str, config: dict, always: bool = False, needs_approval: bool = False) -> dict:
    return {"name": kind, "kind": kind, "config": config, "always": always, "needs_approval": needs_approval}


def apply_step(target: GitOpsTarget) -> dict:
    deadline = {"deadline_minutes": target.deadline_minutes}
    if target.apply in ("opsbot", "watch"):
        w = target.workload
        config = {"cluster": w.cluster, "namespace": w.namespace, "deployment": w.deployment, "container": w.container}
        config["container"] = w.container or target.container
        return _step(f"apply-{target.apply}", {**config, **deadline})
    if target.apply == "argocd":
        return _step("apply-argocd", {"application": target.application, **deadline})
    if target.apply == "flux":
        f = target.flux
        return _step(
            "apply-flux", {"cluster": f.cluster, "kind": f.kind, "namespace": f.namespace, "name": f.name, **deadline}
        )
    return _step(
        "apply-runbook", {"runbook": target.runbook, "group": target.group, "parameter": target.parameter, **deadline}
    )


def verify_step(target: GitOpsTarget) -> dict | None:
    check = target.verify
    if check is None:
        return None
    timing = {"minutes": check.minutes, "interval_seconds": check.interval_seconds}
    if check.url:
        return _step("verify-http", {"url": check.url, **timing})
    return _step("verify-alarm", {"alarm": check.alarm, "region": check.region, **timing})


def plan(target: GitOpsTarget, action: str) -> list[dict]:
    where = DeployFile.of(target)
    if action == REVERT:
        steps = [_step("git-revert", where)]
    elif target.mode == "merge_request":
        steps = [
            _step("set-image", where),
            _step("open-merge-request", where),
            _step("merge-merge-request", where, needs_approval=True),
        ]
    else:
        steps = [_step("set-image", where), _step("git-commit", where)]
    steps.append(apply_step(target))
    if verify := verify_step(target):
        steps.append(verify)
    steps.append(_step("auto-rollback", {"enabled": target.auto_rollback}, always=True))
    steps.append(_step("report", {}, always=True))
    return steps
