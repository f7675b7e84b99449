"""apply-watch: someone else reconciles (a controller watching the deploy repo); opsbot waits until the live
Deployment shows the release's image and has rolled out, or says that it did not by the deadline. Nothing is changed
in the cluster."""

from __future__ import annotations

import time

from opsbot.markup import dingtalk as md
from opsbot.promotion.registry import FAILED, RUNNING, StepResult, step
from opsbot.promotion.runner import StepRun
from opsbot.promotion.steps.apply_opsbot import Workload, cluster_of, follow_rollout


@step("apply-watch", Workload, "wait until the live Deployment shows the image and has rolled out, by a deadline")
def apply_watch(run: StepRun, where: Workload) -> StepResult:
    from opsbot.ops import kubernetes as k8s  # late: the Kubernetes client, for the jobs that use it

    facts = dict(run.state) if run.poll else {"deadline": int(time.time()) + where.deadline_minutes * 60}
    wanted = run.desired_image
    live = k8s.live_image(cluster_of(run, where.cluster), where.namespace, where.deployment, where.container)
    facts["live"] = live["image"]
    if live["image"] != wanted:
        if time.time() > facts["deadline"]:
            return StepResult(
                FAILED,
                {**facts, "rollout": "not applied"},
                run.t(
                    f"deployment/{where.deployment} 在期限内没有换成 {md(wanted, 200)}"
                    f"（仍是 {md(live['image'], 200)}）",
                    f"deployment/{where.deployment} did not show {md(wanted, 200)} by its deadline "
                    f"(it runs {md(live['image'], 200)})",
                ),
            )
        return StepResult(RUNNING, {**facts, "rollout": "waiting for the image"})
    return follow_rollout(run, where, facts)
