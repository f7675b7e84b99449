"""restart service / 重启 服务: restart a service by the name developers know, wherever it runs in that environment
(`ops.services`): a rollout restart of its Deployment, or its runbook on its VM group. Self-service: a developer
may ask (production changes still need an approval), with a preview they confirm."""

from __future__ import annotations

from opsbot.chat.commands.kubernetes_ops import preview_restart
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.ops import verbs


@command(
    "restart service",
    area="ops",
    aliases=("重启 服务",),
    acts=True,
    verb=verbs.SERVICE_RESTART,
    environment_argument="env",
    arguments=(Argument("service"), Argument("env")),
    zh="按服务名重启一个服务（Kubernetes 上滚动重启，VM 上执行它的 runbook）：先预览，确认后执行",
    en="Restart a service by its name, wherever it runs (a rollout restart on Kubernetes, its runbook on VMs): a "
    "preview, your confirm, then the outcome",
    examples=("restart service shop-api production", "重启 服务 shop-web production"),
)
def restart_service(request: ChatRequest) -> Reply:
    from opsbot.ops import kubernetes as k8s  # late: the registry, loaded at every cold start, needs only the verbs
    from opsbot.ops import run, vm

    ops = request.config.ops
    name, env = str(request.arguments["service"]), str(request.arguments["env"])
    service = ops.services.get(name)
    if service is None:
        known = ", ".join(sorted(ops.services)) or "-"
        raise UsageError(
            request.t(f"没有服务 `{md(name, 60)}`。可用：{known}", f"no service `{md(name, 60)}`. Known: {known}")
        )
    target = service.get(env)
    if target is None:
        raise UsageError(
            request.t(
                f"服务 {name} 没有环境 `{md(env, 40)}`：{', '.join(service)}",
                f"service {name} has no environment `{md(env, 40)}`: {', '.join(service)}",
            )
        )
    if target.on_kubernetes:
        cluster = ops.clusters[target.cluster]
        facts = k8s.deployment(cluster, target.namespace, target.deployment)
        return preview_restart(request, verbs.SERVICE_RESTART, cluster, target.namespace, facts, env)
    runbook, group = ops.runbooks[target.runbook], ops.vm_groups[target.group]
    chosen = vm.values(runbook, {})
    plan = vm.plan(runbook, group, chosen)
    return run.preview(
        request.config,
        request.actor,
        request.record,
        verbs.SERVICE_RESTART,
        request.job_id[:8],
        env,
        f"service {name}: vm group {group.name}",
        f"restart service {name} ({runbook.name} on {group.name})",
        plan,
        request.language,
    )
