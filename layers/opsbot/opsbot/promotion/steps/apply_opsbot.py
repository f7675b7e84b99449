"""apply-opsbot: opsbot itself makes the cluster match: a strategic merge patch of the Deployment's container image
(only that Deployment: least privilege, README "Wire up GitOps releases"), with the release noted on the pod template,
then the rollout followed as `k8s restart` follows it (ops/kubernetes.rollout_state): done, stuck, failed, or not done
by the deadline. The patch is looked up before it is made: a Deployment already running this release's image is not
patched again."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.markup import dingtalk as md
from opsbot.promotion.registry import FAILED, RUNNING, SUCCEEDED, StepFailed, StepResult, step
from opsbot.promotion.runner import StepRun


@dataclass(frozen=True)
class Workload:
    cluster: str
    namespace: str
    deployment: str
    container: str = ""
    deadline_minutes: int = 10


def cluster_of(run: StepRun, name: str):
    cluster = run.config.ops.clusters.get(name)
    if cluster is None:
        raise StepFailed(run.t(f"集群 {name} 已不在配置中", f"cluster {name} is no longer configured"))
    return cluster


def follow_rollout(run: StepRun, where: Workload, facts: dict) -> StepResult:
    from opsbot.ops import kubernetes as k8s  # late: the Kubernetes client, for the jobs that use it

    state, said = k8s.rollout_state(cluster_of(run, where.cluster), where.namespace, where.deployment)
    name = f"deployment/{where.deployment} ({where.cluster}/{where.namespace})"
    said = md(said, 200)
    if state == "done":
        return StepResult(
            SUCCEEDED, {**facts, "rollout": "done"}, run.t(f"{name} rollout 完成：{said}", f"{name} rolled out: {said}")
        )
    if state in ("stuck", "failed"):
        zh = "卡住了" if state == "stuck" else "失败"
        return StepResult(
            FAILED,
            {**facts, "rollout": state},
            run.t(f"{name} rollout {zh}：{said}", f"{name} rollout {state}: {said}"),
        )
    if time.time() > facts["deadline"]:
        return StepResult(
            FAILED,
            {**facts, "rollout": "stuck"},
            run.t(f"{name} 在期限内没有完成 rollout（{said}）", f"{name} did not roll out by its deadline ({said})"),
        )
    return StepResult(RUNNING, {**facts, "rollout": "progressing"})


@step("apply-opsbot", Workload, "patch the Deployment's image (strategic merge patch, once) and follow its rollout")
def apply_opsbot(run: StepRun, where: Workload) -> StepResult:
    from opsbot.ops import kubernetes as k8s  # late: the Kubernetes client, for the jobs that use it

    if run.poll == 0:
        cluster = cluster_of(run, where.cluster)
        patched = k8s.set_image(
            cluster, where.namespace, where.deployment, where.container, run.desired_image, run.release.id
        )
        facts = {
            "image": patched["image"],
            "patched": patched["patched"],
            "deadline": int(time.time()) + where.deadline_minutes * 60,
        }
        return StepResult(RUNNING, {**facts, "rollout": "started"})
    return follow_rollout(run, where, run.state)
