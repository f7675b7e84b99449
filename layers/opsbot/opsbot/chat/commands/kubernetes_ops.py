"""k8s / 集群: pods, logs, rollout restart and scale, on the clusters and namespaces the config names (`ops.clusters`).

All four run in the worker (the Kubernetes client never loads in the DingTalk function). `pods` and `logs` read;
`restart` and `scale` change, so they answer with a preview that the requester confirms (`confirm <id>`).
There is no free-form kubectl: every argument is a name the config or the cluster knows, or a checked number.
"""

from __future__ import annotations

import re

from opsbot.authz.core import Target
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import REGISTRY, Argument, UsageError, command
from opsbot.config.ops import Cluster
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.ops import verbs

LOG_LINES, MAX_LOG_LINES = 100, 2000
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def cluster_of(request: ChatRequest) -> tuple[Cluster, str]:
    """The configured cluster and namespace the arguments name, or a UsageError listing what there is."""
    clusters = request.config.ops.clusters
    name = str(request.arguments["cluster"])
    cluster = clusters.get(name)
    if cluster is None:
        known = ", ".join(sorted(clusters)) or "-"
        raise UsageError(
            request.t(f"没有集群 `{md(name, 60)}`。可用：{known}", f"no cluster `{md(name, 60)}`. Known: {known}")
        )
    namespace = str(request.arguments["namespace"])
    if namespace not in cluster.namespaces:
        known = ", ".join(cluster.namespaces)
        raise UsageError(
            request.t(
                f"{cluster.name} 上只允许这些命名空间：{known}",
                f"{cluster.name} allows only these namespaces: {known}",
            )
        )
    return cluster, namespace


def k8s_name(request: ChatRequest, value, what: str) -> str:
    text = str(value)
    if not _NAME.match(text):
        raise UsageError(
            request.t(f"`{md(text, 60)}` 不是合法的 {what} 名称", f"`{md(text, 60)}` is not a {what} name")
        )
    return text


@command(
    "k8s",
    area="ops",
    aliases=("kubernetes", "集群"),
    arguments=(Argument("subcommand", required=False),),
    usage="k8s pods|logs|restart|scale …",
    zh="Kubernetes：`k8s pods`、`k8s logs`、`k8s restart`、`k8s scale`，以及配置里的集群",
    en="Kubernetes: `k8s pods`, `k8s logs`, `k8s restart`, `k8s scale`, and the clusters in config",
    examples=("k8s",),
)
def k8s_help(request: ChatRequest) -> Reply:
    word = request.arguments.get("subcommand")
    lines = [
        f"- `{c.usage()}` — {c.summary[request.language]}"
        for name, c in REGISTRY.commands.items()
        if name.startswith("k8s ")
    ]
    clusters = [
        f"- `{c.name}` ({c.environment}): {', '.join(c.namespaces)}" for c in request.config.ops.clusters.values()
    ]
    head = request.t(
        f"没有 `k8s {md(word, 40)}`。" if word else "", f"There is no `k8s {md(word, 40)}`. " if word else ""
    )
    body = request.t("可用的：\n\n", "Use:\n\n") + "\n".join(lines)
    body += request.t("\n\n集群：\n\n", "\n\nClusters:\n\n") + ("\n".join(clusters) or "-")
    return Reply(title=request.t("集群", "k8s"), ok=not word, text=head + body)


@command(
    "k8s pods",
    area="ops",
    aliases=("集群 状态",),
    acts=True,
    verb=verbs.K8S_PODS,
    arguments=(Argument("cluster"), Argument("namespace"), Argument("app", required=False)),
    zh="命名空间（或某个 app 标签）的 Deployment 和 pod：就绪数、重启次数",
    en="Deployments and pods of a namespace (or of one app label): readiness and restarts",
    examples=("k8s pods shop-eks shop", "集群 状态 shop-eks shop shop-api"),
)
def k8s_pods(request: ChatRequest) -> Reply:
    from opsbot.ops import kubernetes as k8s  # late: the registry, loaded at every cold start, needs only the verbs

    cluster, namespace = cluster_of(request)
    app = k8s_name(request, request.arguments["app"], "app") if request.arguments.get("app") else ""
    request.authorize(verbs.K8S_PODS, run_target(cluster, namespace))
    found = k8s.workloads(cluster, namespace, app)
    where = f"{cluster.name}/{namespace}" + (f" app={app}" if app else "")
    lines = [request.t(f"### ☸️ {where}", f"### ☸️ {where}")]
    for d in found["deployments"]:
        paused = request.t("（已暂停）", " (paused)") if d["paused"] else ""
        lines.append(f"- deployment/{d['name']}: {d['ready']}/{d['replicas']} ready, {d['updated']} updated{paused}")
    pods = found["pods"]
    shown = pods[:40]
    for p in shown:
        reason = f" · {md(p['reason'], 60)}" if p["reason"] else ""
        lines.append(
            f"- `{p['name']}` {p['phase']} {p['ready']}/{p['containers']} ready, {p['restarts']} restart(s){reason}"
        )
    if len(pods) > len(shown):
        lines.append(request.t(f"- ……还有 {len(pods) - len(shown)} 个 pod", f"- … {len(pods) - len(shown)} more pods"))
    if not found["deployments"] and not pods:
        lines.append(request.t("没有找到。", "Nothing found."))
    return Reply(
        title=request.t(f"集群状态 {cluster.name}", f"k8s pods {cluster.name}"),
        text="\n".join(lines),
        detail=f"{len(pods)} pods in {where}",
    )


def run_target(cluster: Cluster, namespace: str) -> Target:
    return Target(environment=cluster.environment, scope=f"cluster {cluster.name}/{namespace}")


@command(
    "k8s logs",
    area="ops",
    aliases=("集群 日志",),
    acts=True,
    verb=verbs.K8S_LOGS,
    arguments=(
        Argument("cluster"),
        Argument("namespace"),
        Argument("pod|deployment/name"),
        Argument("lines", required=False, number=True),
    ),
    zh="一个 pod（或 Deployment 最新的 pod）最后 N 行日志（默认 100）；摘要放在消息里，完整内容在链接后",
    en="The last N log lines (100 unless you say) of a pod, or of a Deployment's newest pod; the gist here, "
    "all of it behind a link",
    examples=("k8s logs shop-eks shop deployment/shop-api", "集群 日志 shop-eks shop shop-api-1x0 200"),
)
def k8s_logs(request: ChatRequest) -> Reply:
    from opsbot.ops import kubernetes as k8s  # late: the registry, loaded at every cold start, needs only the verbs
    from opsbot.ops import output

    cluster, namespace = cluster_of(request)
    target = str(request.arguments["pod|deployment/name"])
    kind, _, name = target.rpartition("/")
    if kind not in ("", "deployment", "deploy"):
        raise UsageError(request.t("只能看 pod 或 deployment/<名称> 的日志", "logs are of a pod or deployment/<name>"))
    k8s_name(request, name, "pod" if not kind else "deployment")
    lines = max(1, min(int(request.arguments.get("lines") or LOG_LINES), MAX_LOG_LINES))
    request.authorize(verbs.K8S_LOGS, run_target(cluster, namespace))
    pod, text = k8s.pod_logs(cluster, namespace, target, lines)
    facts = output.summary(text)
    kept, left_out = output.plain_lines(text)
    link = output.store(f"ops/{request.job_id[:8]}/logs-{pod}.txt", text) if left_out else ""
    head = request.t(
        f"### 📜 {cluster.name}/{namespace} `{pod}` 最后 {facts['lines']} 行"
        f"（{facts['errors']} 行错误，{facts['warnings']} 行警告）",
        f"### 📜 {cluster.name}/{namespace} `{pod}`: last {facts['lines']} lines "
        f"({facts['errors']} error lines, {facts['warnings']} warnings)",
    )
    parts = [head, output.code_block(kept) or request.t("（没有日志）", "(no log lines)")]
    if left_out:
        more = f"[{request.t('全部日志', 'the whole log')}]({link})" if link else ""
        parts.append(
            request.t(f"上面是最后 {len(kept)} 行；{more}", f"Above: the last {len(kept)} lines; {more}").rstrip("；; ")
        )
    return Reply(
        title=request.t(f"日志 {pod}", f"logs {pod}"),
        text="\n\n".join(parts),
        detail=f"logs of {pod}: {facts['lines']} lines",
    )


def _deployment(request: ChatRequest, cluster: Cluster, namespace: str) -> dict:
    from opsbot.ops import kubernetes as k8s  # late: the registry, loaded at every cold start, needs only the verbs

    name = k8s_name(request, request.arguments["deployment"], "deployment")
    return k8s.deployment(cluster, namespace, name)


def preview_restart(request: ChatRequest, verb, cluster: Cluster, namespace: str, facts: dict, environment: str):
    from opsbot.ops import run  # late: the registry, loaded at every cold start, needs only the verbs

    if facts["paused"]:
        raise UsageError(
            request.t(
                f"deployment/{facts['name']} 已暂停，kubectl 也不会重启它；请先恢复。",
                f"deployment/{facts['name']} is paused, which kubectl does not restart either; resume it first.",
            )
        )
    plan = {
        "kind": "k8s-restart",
        "cluster": cluster.name,
        "namespace": namespace,
        "deployment": facts["name"],
        "replicas": facts["replicas"],
    }
    scope = f"cluster {cluster.name}/{namespace} deployment/{facts['name']}"
    return run.preview(
        request.config,
        request.actor,
        request.record,
        verb,
        request.job_id[:8],
        environment,
        scope,
        f"restart deployment/{facts['name']} in {cluster.name}/{namespace}",
        plan,
        request.language,
    )


@command(
    "k8s restart",
    area="ops",
    aliases=("集群 重启",),
    acts=True,
    verb=verbs.K8S_RESTART,
    arguments=(Argument("cluster"), Argument("namespace"), Argument("deployment")),
    zh="滚动重启一个 Deployment（同 kubectl rollout restart）：先预览，确认后执行，之后报告 rollout 结果",
    en="Rollout restart of a Deployment (as kubectl rollout restart): a preview, your confirm, then the rollout's "
    "outcome",
    examples=("k8s restart shop-eks shop shop-api", "集群 重启 shop-eks shop shop-api"),
)
def k8s_restart(request: ChatRequest) -> Reply:
    cluster, namespace = cluster_of(request)
    facts = _deployment(request, cluster, namespace)
    return preview_restart(request, verbs.K8S_RESTART, cluster, namespace, facts, cluster.environment)


@command(
    "k8s scale",
    area="ops",
    aliases=("集群 扩缩容",),
    acts=True,
    verb=verbs.K8S_SCALE,
    arguments=(Argument("cluster"), Argument("namespace"), Argument("deployment"), Argument("replicas", number=True)),
    zh="调整 Deployment 的副本数（在集群配置的上下限之内）：先预览，确认后执行",
    en="Scale a Deployment within the cluster's configured limits: a preview, your confirm, then the rollout",
    examples=("k8s scale shop-eks shop shop-api 4", "集群 扩缩容 shop-eks shop shop-api 2"),
)
def k8s_scale(request: ChatRequest) -> Reply:
    from opsbot.ops import run  # late: the registry, loaded at every cold start, needs only the verbs

    cluster, namespace = cluster_of(request)
    replicas = int(request.arguments["replicas"])
    if not cluster.min_replicas <= replicas <= cluster.max_replicas:
        raise UsageError(
            request.t(
                f"{cluster.name} 的副本数只能在 {cluster.min_replicas} 到 {cluster.max_replicas} 之间",
                f"replicas on {cluster.name} must be from {cluster.min_replicas} to {cluster.max_replicas}",
            )
        )
    facts = _deployment(request, cluster, namespace)
    plan = {
        "kind": "k8s-scale",
        "cluster": cluster.name,
        "namespace": namespace,
        "deployment": facts["name"],
        "from": facts["replicas"],
        "to": replicas,
    }
    return run.preview(
        request.config,
        request.actor,
        request.record,
        verbs.K8S_SCALE,
        request.job_id[:8],
        cluster.environment,
        f"cluster {cluster.name}/{namespace} deployment/{facts['name']}",
        f"scale deployment/{facts['name']} in {cluster.name}/{namespace} {facts['replicas']}→{replicas}",
        plan,
        request.language,
    )
