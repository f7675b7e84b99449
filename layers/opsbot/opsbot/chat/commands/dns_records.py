"""dns / 域名: show a name, set a record, undo a change, in the zones the config names (`ops.dns_zones`), within
their record types and TTL range, never touching their protected names. `set` previews old → new; after the
requester confirms, opsbot UPSERTs it, waits for Route 53's INSYNC in a delayed job, then asks the zone's own name
servers by real DNS and says what they answer. `undo <id>` previews putting back what that change replaced."""

from __future__ import annotations

from opsbot.authz.core import Target
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import REGISTRY, Argument, UsageError, command
from opsbot.config.ops import DnsZone
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.ops import verbs


def _zone(request: ChatRequest, name: str) -> DnsZone:
    zone = request.config.ops.zone_for(name)
    if zone is None:
        known = ", ".join(z.domain for z in request.config.ops.dns_zones.values()) or "-"
        raise UsageError(
            request.t(
                f"`{md(name, 80)}` 不在配置的 zone 里：{known}", f"`{md(name, 80)}` is in no configured zone: {known}"
            )
        )
    return zone


@command(
    "dns",
    aliases=("域名",),
    arguments=(Argument("subcommand", required=False),),
    usage="dns show|set|undo …",
    zh="DNS：`dns show`、`dns set`、`dns undo`，以及配置里的 zone",
    en="DNS: `dns show`, `dns set`, `dns undo`, and the zones in config",
    examples=("dns",),
)
def dns_help(request: ChatRequest) -> Reply:
    word = request.arguments.get("subcommand")
    lines = [
        f"- `{c.usage()}` — {c.summary[request.language]}" for n, c in REGISTRY.commands.items() if n.startswith("dns ")
    ]
    for zone in request.config.ops.dns_zones.values():
        lines.append(
            f"- zone `{zone.domain}` ({zone.environment}): {', '.join(zone.types)}, TTL {zone.ttl_min}–{zone.ttl_max}"
        )
    head = request.t(
        f"没有 `dns {md(word, 40)}`。" if word else "", f"There is no `dns {md(word, 40)}`. " if word else ""
    )
    return Reply(title="dns", ok=not word, text=head + "\n".join(lines))


@command(
    "dns show",
    aliases=("域名 查看",),
    acts=True,
    verb=verbs.DNS_SHOW,
    arguments=(Argument("name"), Argument("type", required=False)),
    zh="一个域名在 Route 53 里的记录",
    en="A name's records in Route 53",
    examples=("dns show api.shop.example", "域名 查看 www.shop.example CNAME"),
)
def dns_show(request: ChatRequest) -> Reply:
    from opsbot.ops import dns  # late: the registry, loaded at every cold start, needs only the verbs

    name = dns.normalise(str(request.arguments["name"]))
    zone = _zone(request, name)
    kind = str(request.arguments.get("type") or "").upper()
    request.authorize(verbs.DNS_SHOW, Target(environment=zone.environment, scope=f"zone {zone.name}"))
    records = [r for r in dns.record_sets(zone, name) if not kind or r["Type"] == kind]
    lines = [f"### 🌐 `{name}` ({zone.name})"]
    for record in records:
        values = ", ".join(dns.values_of(record)) or ("alias" if record.get("Unmanaged") else "-")
        lines.append(f"- {record['Type']} {md(values, 300)} (TTL {record['TTL']})")
    if not records:
        lines.append(request.t("没有记录。", "No records."))
    return Reply(title=f"dns {name}", text="\n".join(lines), detail=f"{len(records)} record set(s) of {name}")


@command(
    "dns set",
    aliases=("域名 修改",),
    acts=True,
    verb=verbs.DNS_SET,
    arguments=(Argument("name"), Argument("type"), Argument("value"), Argument("ttl", required=False)),
    zh="设置一条记录（UPSERT）：先预览旧值 → 新值，确认后修改，等 INSYNC 后用真实 DNS 验证",
    en="Set a record (UPSERT): a preview of old → new, your confirm, then INSYNC and a check by real DNS",
    examples=("dns set api.shop.example A 192.0.2.10", "域名 修改 www.shop.example CNAME shop-lb.example.net 300"),
)
def dns_set(request: ChatRequest) -> Reply:
    from opsbot.ops import (
        dns,  # late: the registry, loaded at every cold start, needs only the verbs
        run,
    )

    name = dns.normalise(str(request.arguments["name"]))
    zone = _zone(request, name)
    kind = str(request.arguments["type"]).upper()
    ttl = str(request.arguments.get("ttl") or "").strip()
    if ttl and not (ttl.isascii() and ttl.isdigit()):
        raise UsageError(request.t("TTL 是秒数，一个整数。", "the TTL is a whole number of seconds."))
    try:
        # A huge TTL is a number all the same: the zone's range says what it may be.
        plan = dns.plan_set(zone, name, kind, str(request.arguments["value"]), int(ttl) if ttl else None)
    except dns.RecordError as exc:
        raise UsageError(md(str(exc), 300)) from None
    shown = ", ".join(dns.values_of(plan["after"]))
    return run.preview(
        request.config,
        request.actor,
        request.record,
        verbs.DNS_SET,
        request.job_id[:8],
        zone.environment,
        f"zone {zone.name} {plan['name']} {kind}",
        f"dns set {plan['name']} {kind} {shown}"[:200],
        {"kind": "dns-change", **plan},
        request.language,
    )


@command(
    "dns undo",
    aliases=("域名 撤销",),
    acts=True,
    verb=verbs.DNS_UNDO,
    arguments=(Argument("request"),),
    zh="撤销一次 `dns set`：恢复修改前的快照（同样先预览、再确认）",
    en="Undo a `dns set`: put back the snapshot taken before it (a preview and your confirm, too)",
    examples=("dns undo 3f9a2c1b", "域名 撤销 3f9a2c1b"),
)
def dns_undo(request: ChatRequest) -> Reply:
    from opsbot.ops import (
        dns,  # late: the registry, loaded at every cold start, needs only the verbs
        run,
    )

    request_id = str(request.arguments["request"]).lower()
    from opsbot.ops import requests as ops_requests  # late, as above

    done = ops_requests.get(request_id)
    if done is None or done.plan.get("kind") != "dns-change" or "change_id" not in done.result:
        raise UsageError(
            request.t(
                f"`{md(request_id, 40)}` 不是一次已执行的 DNS 修改。",
                f"`{md(request_id, 40)}` is no DNS change that ran.",
            )
        )
    zone = request.config.ops.dns_zones.get(done.plan["zone"])
    if zone is None:
        raise UsageError(request.t("那个 zone 已不在配置中。", "that zone is no longer configured."))
    plan = {"kind": "dns-change", **dns.plan_undo(zone, {**done.plan, "request": done.id})}
    try:  # the zone's rules as they are now: a name protected since the change is not put back either
        dns.check(zone, plan["name"], plan["type"], plan["after"]["TTL"] if plan["after"] else None)
    except dns.RecordError as exc:
        raise UsageError(md(str(exc), 300)) from None
    return run.preview(
        request.config,
        request.actor,
        request.record,
        verbs.DNS_UNDO,
        request.job_id[:8],
        zone.environment,
        f"zone {zone.name} {plan['name']} {plan['type']}",
        f"dns undo {done.id}: {plan['name']} {plan['type']}",
        plan,
        request.language,
    )
