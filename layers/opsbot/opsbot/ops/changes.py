"""What each kind of ops change shows in its preview, does when it runs, and checks afterwards.

A plan's `kind` says which: `k8s-restart`, `k8s-scale`, `vm-run`, `dns-change`. `run.py` calls these once per
request; `jobs.py` calls `follow` from delayed jobs until the change is done, stuck or failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsbot.channels import buttons
from opsbot.config.model import Config
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.ops import dns, output, vm
from opsbot.ops import kubernetes as k8s
from opsbot.ops.peers import KubernetesRefused, Route53Refused, RunCommandRefused
from opsbot.ops.requests import OpsRequest
from opsbot.settings import settings

DNS_SYNC_SECONDS = 600  # Route 53 says INSYNC within a minute; after this the change is reported stuck


@dataclass
class Step:
    """What a follow-up found: a message to post (or None), and the state of the next check (None: finished)."""

    reply: Reply | None
    next_state: dict | None
    outcome: str = ""  # for the audit log when finished: succeeded or failed


# --- previews ------------------------------------------------------------------------------------------------------


# A change's messages are titled by its kind, in the requester's language: DingTalk shows the title in its notification.
KIND_TITLES = {
    "k8s-restart": ("滚动重启", "rollout restart"),
    "k8s-scale": ("扩缩容", "scale"),
    "vm-run": ("主机执行", "vm run"),
    "dns-change": ("域名修改", "dns change"),
}


def title(request: OpsRequest) -> str:
    zh, en = KIND_TITLES.get(request.plan.get("kind", ""), (request.verb, request.verb))
    return t(request.language, f"{zh} {request.id}", f"{en} {request.id}")


def describe(plan: dict, language: str) -> str:
    """The preview's body: exactly what will happen."""
    kind = plan["kind"]
    where = f"{plan.get('cluster', '')}/{plan.get('namespace', '')}"
    if kind == "k8s-restart":
        return t(
            language,
            f"滚动重启 **{where}** 的 `deployment/{plan['deployment']}`（{plan['replicas']} 个副本，"
            "像 `kubectl rollout restart` 一样逐个替换 pod）",
            f"rollout restart of `deployment/{plan['deployment']}` in **{where}** ({plan['replicas']} replica(s), "
            "replaced pod by pod as `kubectl rollout restart` does)",
        )
    if kind == "k8s-scale":
        return t(
            language,
            f"把 **{where}** 的 `deployment/{plan['deployment']}` 从 {plan['from']} 个副本改为 **{plan['to']}** 个",
            f"scale `deployment/{plan['deployment']}` in **{where}** "
            f"from {plan['from']} to **{plan['to']}** replica(s)",
        )
    if kind == "vm-run":
        count = plan["instances"] if plan["instances"] is not None else "?"
        commands = "\n".join(f"    {md(c, 200)}" for c in plan["parameters"].get("commands", []))
        values = ", ".join(f"{k}={md(v, 60)}" for k, v in plan["values"].items())
        head = t(
            language,
            f"在 VM 组 **{plan['group']}** 的 {count} 台实例上执行 runbook **{plan['runbook']}**"
            f"（{plan['document']}），每次 {plan['max_concurrency']} 台，错误超过 {plan['max_errors']} 个即停止",
            f"runbook **{plan['runbook']}** ({plan['document']}) on {count} instance(s) of group **{plan['group']}**, "
            f"{plan['max_concurrency']} at a time, stop after more than {plan['max_errors']} error(s)",
        )
        return (
            head
            + (f"；{values}" if values and language == "zh" else f"; {values}" if values else "")
            + (f"\n\n{commands}" if commands else "")
        )
    if kind == "dns-change":
        before, after = dns.values_of(plan["before"]), dns.values_of(plan["after"])
        old = f"{', '.join(before)} (TTL {plan['before']['TTL']})" if plan["before"] else t(language, "无", "none")
        new = f"{', '.join(after)} (TTL {plan['after']['TTL']})" if plan["after"] else t(language, "删除", "deleted")
        return f"`{plan['name']}` {plan['type']}：{md(old, 300)} → **{md(new, 300)}**（zone {plan['zone']}）"
    return kind


def preview_reply(request: OpsRequest, needs_approval: int, confirm_minutes: int) -> Reply:
    language = request.language
    approval = (
        t(language, f"确认后还需 {needs_approval} 位其他同事批准。", f" Then it needs {needs_approval} approval(s).")
        if needs_approval
        else ""
    )
    text = t(
        language,
        f"### 🔍 预览 `{request.id}`（{request.environment}）\n\n{describe(request.plan, language)}\n\n"
        f"确认执行：`@opsbot confirm {request.id}`（{confirm_minutes} 分钟内，仅限 {md(request.requester_name)}）。"
        + approval,
        f"### 🔍 Preview `{request.id}` ({request.environment})\n\n{describe(request.plan, language)}\n\n"
        f"To run it: `@opsbot confirm {request.id}` (within {confirm_minutes} min, by {md(request.requester_name)} "
        "only)." + approval,
    )
    return Reply(
        title=t(language, f"预览 {request.id}", f"preview {request.id}"),
        text=text,
        detail=f"preview {request.id}: {request.summary}"[:200],
        buttons=buttons.confirm_button(request.id, language),
    )


# --- checking again, with today's config ---------------------------------------------------------------------------


def no_longer_allowed(config: Config, request: OpsRequest) -> str:
    """Why the plan previewed at `request.created` no longer fits the config as it is now ("" when it still does):
    a confirm or an approval may come up to a day after the preview, and the config may have protected a name,
    narrowed a cluster's limits or dropped a runbook since. Checked right before a confirm or an approval acts."""
    plan, kind = request.plan, request.plan["kind"]
    ops = config.ops
    if kind in ("k8s-restart", "k8s-scale"):
        cluster = ops.clusters.get(plan["cluster"])
        if cluster is None or plan["namespace"] not in cluster.namespaces:
            return f"the cluster {plan['cluster']}/{plan['namespace']} is no longer one opsbot may touch"
        if cluster.environment != request.environment:
            return f"the cluster {cluster.name} is now in {cluster.environment}, not {request.environment}"
        if kind == "k8s-scale" and not cluster.min_replicas <= plan["to"] <= cluster.max_replicas:
            limits = f"{cluster.min_replicas}–{cluster.max_replicas}"
            return f"{plan['to']} replicas is outside {cluster.name}'s limits now ({limits})"
        return ""
    if kind == "vm-run":
        runbook, group = ops.runbooks.get(plan["runbook"]), ops.vm_groups.get(plan["group"])
        if runbook is None or group is None or group.name not in runbook.groups:
            return f"the runbook {plan['runbook']} may no longer run on {plan['group']}"
        if group.environment != request.environment:
            return f"the group {group.name} is now in {group.environment}, not {request.environment}"
        if vm.document_parameters(runbook, plan["values"]) != plan["parameters"]:
            return f"the runbook {runbook.name} changed since the preview"
        return ""
    if kind == "dns-change":
        zone = ops.dns_zones.get(plan["zone"])
        if zone is None or zone.zone_id != plan["zone_id"]:
            return f"the zone {plan['zone']} is no longer one opsbot may change"
        if zone.environment != request.environment:
            return f"the zone {zone.name} is now in {zone.environment}, not {request.environment}"
        ttl = plan["after"]["TTL"] if plan["after"] else None
        try:
            dns.check(zone, plan["name"], plan["type"], ttl)
        except dns.RecordError as exc:
            return str(exc)
        return ""
    return f"opsbot does not know the change {kind}"


# --- running -------------------------------------------------------------------------------------------------------


def execute(config: Config, request: OpsRequest) -> tuple[Reply, dict, dict | None]:
    """Make the change: (the reply, what it did, the first follow-up's state or None)."""
    plan, language = request.plan, request.language
    by = f"{request.requester_name[:40]} ({request.id})"  # kept whole on the Deployment: a retry finds it there
    kind = plan["kind"]
    if kind in ("k8s-restart", "k8s-scale"):
        cluster = config.ops.clusters.get(plan["cluster"])
        if cluster is None:
            raise KubernetesRefused(404, f"cluster {plan['cluster']} is no longer configured")
        if kind == "k8s-restart":
            done = k8s.rollout_restart(cluster, plan["namespace"], plan["deployment"], by)
            head = t(language, "已开始滚动重启", "Rollout restart started:")
        else:
            done = k8s.scale(cluster, plan["namespace"], plan["deployment"], plan["to"], by)
            head = t(language, "已调整副本数", "Scaled:")
        deadline = int(time.time()) + cluster.rollout_minutes * 60
        text = t(
            language,
            f"### ♻️ {head} `deployment/{plan['deployment']}`（{plan['cluster']}/{plan['namespace']}，`{request.id}`）"
            "\n\n正在跟踪 rollout，完成、卡住或失败时会通知。",
            f"### ♻️ {head} `deployment/{plan['deployment']}` ({plan['cluster']}/{plan['namespace']}, "
            f"`{request.id}`)\n\nWatching the rollout: you hear when it is done, stuck or failed.",
        )
        return (
            Reply(title=title(request), text=text, detail=f"{request.summary}: started"[:200]),
            done,
            {"deadline": deadline},
        )
    if kind == "vm-run":
        command_id = vm.send(plan, request.id, request.requester_name, request.created)
        text = t(
            language,
            f"### 🖥 已发送 runbook **{plan['runbook']}** 到 **{plan['group']}**（`{request.id}`，SSM 命令 "
            f"`{command_id}`）\n\n实例完成时会陆续报告进度，最后给出汇总。",
            f"### 🖥 Sent runbook **{plan['runbook']}** to **{plan['group']}** (`{request.id}`, SSM command "
            f"`{command_id}`)\n\nProgress is posted as instances finish, then a summary.",
        )
        return (
            Reply(
                title=title(request),
                text=text,
                detail=f"{request.summary}: command {command_id}"[:200],
            ),
            {"command_id": command_id},
            {"last_post": int(time.time()), "seen": {}},
        )
    if kind == "dns-change":
        zone = config.ops.dns_zones.get(plan["zone"])
        if zone is None:
            raise Route53Refused(404, f"zone {plan['zone']} is no longer configured")
        change_id = dns.change(zone, plan, f"opsbot {request.id} by {request.requester_name}: {request.summary}")
        text = t(
            language,
            f"### 🌐 已提交 `{plan['name']}` {plan['type']} 的修改（`{request.id}`）\n\n等待 Route 53 同步"
            f"（INSYNC），然后直接向权威 DNS 验证。撤销：`@opsbot dns undo {request.id}`",
            f"### 🌐 Submitted the change of `{plan['name']}` {plan['type']} (`{request.id}`)\n\nWaiting for "
            f"Route 53 (INSYNC), then asking the zone's name servers. Undo: `@opsbot dns undo {request.id}`",
        )
        return (
            Reply(
                title=title(request),
                text=text,
                detail=f"{request.summary}: change {change_id}"[:200],
            ),
            {"change_id": change_id, "name": plan["name"], "type": plan["type"], "before": plan["before"]},
            {"deadline": int(time.time()) + DNS_SYNC_SECONDS},
        )
    raise RunCommandRefused(400, f"unknown change {kind}")


# --- following up --------------------------------------------------------------------------------------------------


def follow(config: Config, request: OpsRequest, state: dict) -> Step:
    kind = request.plan["kind"]
    if kind in ("k8s-restart", "k8s-scale"):
        return _follow_rollout(config, request, state)
    if kind == "vm-run":
        return _follow_vm(request, state)
    return _follow_dns(config, request, state)


def _finished(request: OpsRequest, ok: bool, icon: str, zh: str, en: str) -> Step:
    text = t(request.language, zh, en)
    return Step(
        Reply(title=title(request), text=f"### {icon} {text}", ok=ok, detail=text[:200]),
        None,
        "succeeded" if ok else "failed",
    )


def _follow_rollout(config: Config, request: OpsRequest, state: dict) -> Step:
    plan = request.plan
    cluster = config.ops.clusters.get(plan["cluster"])
    name = f"deployment/{plan['deployment']} ({plan['cluster']}/{plan['namespace']}, `{request.id}`)"
    if cluster is None:
        return _finished(
            request, False, "❓", f"{name}：集群已不在配置中。", f"{name}: the cluster is gone from config."
        )
    found, facts = k8s.rollout_state(cluster, plan["namespace"], plan["deployment"])
    facts = md(facts, 300)
    if found == "done":
        return _finished(request, True, "✅", f"{name} rollout 完成：{facts}", f"{name} rolled out: {facts}")
    if found == "stuck":
        return _finished(request, False, "⚠️", f"{name} rollout 卡住了：{facts}", f"{name} rollout is stuck: {facts}")
    if found == "failed":
        return _finished(request, False, "❌", f"{name} rollout 失败：{facts}", f"{name} rollout failed: {facts}")
    if time.time() > state["deadline"]:
        return _finished(
            request,
            False,
            "⚠️",
            f"{name} 在期限内没有完成 rollout（{facts}）。",
            f"{name} made no progress by its deadline ({facts}): stuck.",
        )
    return Step(None, state)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "-"


def _follow_vm(request: OpsRequest, state: dict) -> Step:
    plan, language, command_id = request.plan, request.language, request.result["command_id"]
    found = vm.progress(command_id)
    name = f"**{plan['runbook']}** @ **{plan['group']}** (`{request.id}`)"
    if not found["done"]:
        now = int(time.time())
        changed = found["counts"] != state.get("seen")
        if changed and now - state.get("last_post", 0) >= settings().ops_progress_seconds:
            finished = sum(n for s, n in found["counts"].items() if s in vm.DONE or s in vm.FAILED)
            text = t(
                language,
                f"⏳ {name}：{finished}/{found['targets']} 台完成 · {_counts(found['counts'])}",
                f"⏳ {name}: {finished}/{found['targets']} done · {_counts(found['counts'])}",
            )
            reply = Reply(title=title(request), text=text, detail="progress")
            return Step(reply, {"last_post": now, "seen": found["counts"]})
        return Step(None, state)
    ran = sum(found["counts"].values())
    not_run = max(0, found["targets"] - ran)
    lines = [
        t(
            language,
            f"### {'✅' if found['status'] == 'Success' else '❌'} {name} 结束：{found['status']}",
            f"### {'✅' if found['status'] == 'Success' else '❌'} {name} finished: {found['status']}",
        ),
        "",
        f"- {t(language, '按状态', 'by status')}: {_counts(found['counts'])}",
    ]
    if not_run:
        lines.append(
            t(
                language,
                f"- 未执行：{not_run} 台（错误超过 {plan['max_errors']} 个后停止发送）",
                f"- not run: {not_run} (stopped sending after more than {plan['max_errors']} error(s))",
            )
        )
    for instance_id, first in vm.failures(command_id, found["instances"]):
        lines.append(f"- `{instance_id}`: " + " / ".join(first))
    link = output.store(f"ops/{request.id}/output.txt", vm.full_output(request.id, command_id, found["instances"]))
    if link:
        lines.append(t(language, f"\n[全部输出]({link})", f"\n[Full output]({link})"))
    ok = found["status"] == "Success"
    text = "\n".join(lines)
    return Step(
        Reply(title=title(request), text=text, ok=ok, detail=f"{found['status']}: {_counts(found['counts'])}"),
        None,
        "succeeded" if ok else "failed",
    )


def _follow_dns(config: Config, request: OpsRequest, state: dict) -> Step:
    plan = request.plan
    zone = config.ops.dns_zones.get(plan["zone"])
    name = f"`{plan['name']}` {plan['type']} (`{request.id}`)"
    if zone is None:
        return _finished(request, False, "❓", f"{name}：zone 已不在配置中。", f"{name}: the zone is gone from config.")
    change_id = request.result.get("change_id", "")
    if change_id and dns.change_status(change_id) != "INSYNC":  # none: the record was already as planned
        if time.time() > state["deadline"]:
            return _finished(
                request, False, "⚠️", f"{name}：Route 53 迟迟没有 INSYNC。", f"{name}: Route 53 never said INSYNC."
            )
        return Step(None, state)
    expected = dns.values_of(plan["after"])
    answers = dns.verify(zone, plan["name"], plan["type"], expected)
    said = "; ".join(f"{a['server']} → {', '.join(a['seen']) or 'no record'}" for a in answers)
    said = md(said, 600)
    if answers and all(a["ok"] for a in answers):
        return _finished(
            request,
            True,
            "✅",
            f"{name} 已生效（INSYNC），权威 DNS 的回答：{said}",
            f"{name} is live (INSYNC); the zone's name servers answer: {said}",
        )
    return _finished(
        request,
        False,
        "⚠️",
        f"{name} 已 INSYNC，但权威 DNS 的回答不符：{said}",
        f"{name} is INSYNC, but the zone's name servers answer otherwise: {said}",
    )
