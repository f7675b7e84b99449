"""apply-runbook: for VMs, an `ops.runbooks` runbook with the release's version as its typed parameter, over a VM
group, K at a time and stopping after E errors, through SSM Run Command as `vm run` sends it (ops/vm.py). SendCommand
is looked up before it is sent (its Comment names the release), then followed until the command is done."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.markup import dingtalk as md
from opsbot.promotion import formats
from opsbot.promotion.registry import FAILED, RUNNING, SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun


@dataclass(frozen=True)
class RunbookRun:
    runbook: str
    group: str
    parameter: str = "version"
    deadline_minutes: int = 10


@step("apply-runbook", RunbookRun, "run the runbook with the version over the VM group, K at a time, and follow it")
def apply_runbook(run: StepRun, where: RunbookRun) -> StepResult:
    from opsbot.ops import vm  # late: the ops logic, for the jobs that use it

    release = run.release
    if run.poll == 0:
        runbook, group = run.config.ops.runbooks.get(where.runbook), run.config.ops.vm_groups.get(where.group)
        if runbook is None or group is None:
            raise StepFailed(
                run.t(
                    f"runbook {where.runbook} 或 VM 组 {where.group} 已不在配置中",
                    f"runbook {where.runbook} or VM group {where.group} is no longer configured",
                )
            )
        try:
            version = formats.split_reference(run.desired_image).tag or release.tag
            chosen = vm.values(runbook, {where.parameter: version})
        except vm.ParameterError as exc:
            raise StepFailed(md(str(exc), 200)) from None
        plan = vm.plan(runbook, group, chosen)
        command = vm.send(plan, release.id, release.requester.get("name", "opsbot"), release.created // 1000)
        state = {"command": command, "deadline": int(time.time()) + where.deadline_minutes * 60}
        return StepResult(RUNNING, {**state, "rollout": "sent"})
    found = vm.progress(run.state["command"])
    counts = ", ".join(f"{status} {n}" for status, n in sorted(found["counts"].items())) or "-"
    name = f"{where.runbook} @ {where.group}"
    state = {**run.state, "counts": found["counts"], "targets": found["targets"]}
    if not found["done"]:
        if time.time() > run.state["deadline"]:
            return StepResult(
                FAILED,
                {**state, "rollout": "stuck"},
                run.t(f"{name} 在期限内没有完成（{counts}）", f"{name} did not finish by its deadline ({counts})"),
            )
        return StepResult(RUNNING, {**state, "rollout": counts})
    if found["status"] == "Success":
        return StepResult(
            SUCCEEDED, {**state, "rollout": "done"}, run.t(f"{name} 完成：{counts}", f"{name} finished: {counts}")
        )
    return StepResult(
        FAILED,
        {**state, "rollout": "failed"},
        run.t(f"{name} 结束：{found['status']}（{counts}）", f"{name} ended {found['status']} ({counts})"),
    )
