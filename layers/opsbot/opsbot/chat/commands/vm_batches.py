"""vm / 主机: a runbook on a VM group through SSM Run Command (`ops.runbooks`, `ops.vm_groups`). The runbook's
commands are the config's; a person chooses only the runbook, the group, and typed parameter values
(`name=value`). A preview says what will run on how many instances, K at a time, stopping after E errors; the
requester confirms; progress is posted as instances finish, then a summary with the whole output behind a link."""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import REGISTRY, Argument, UsageError, command
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.ops import verbs


def _parse(words: list[str]) -> dict:
    if len(words) < 2:
        raise UsageError("missing <runbook> <group>")
    found: dict = {"runbook": words[0], "group": words[1]}
    for word in words[2:]:
        name, sep, value = word.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"parameters are name=value, got '{md(word, 40)}'")
        if name in found:
            raise UsageError(f"'{md(name, 40)}' is given twice")
        found[name] = value
    return found


@command(
    "vm",
    area="ops",
    aliases=("主机",),
    arguments=(Argument("subcommand", required=False),),
    usage="vm run <runbook> <group> [name=value …]",
    zh="VM 批量操作：`vm run`，以及配置里的 runbook 和 VM 组",
    en="VM batches: `vm run`, and the runbooks and VM groups in config",
    examples=("vm",),
)
def vm_help(request: ChatRequest) -> Reply:
    word = request.arguments.get("subcommand")
    ops = request.config.ops
    lines = [
        f"- `{c.usage()}` — {c.summary[request.language]}" for n, c in REGISTRY.commands.items() if n.startswith("vm ")
    ]
    for runbook in ops.runbooks.values():
        params = ", ".join(
            f"{p.name}=<{'|'.join(p.allowed) if p.type == 'choice' else f'{p.minimum}..{p.maximum}'}>"
            + (f" ({p.default})" if p.default else "")
            for p in runbook.parameters.values()
        )
        lines.append(f"- runbook `{runbook.name}` on {', '.join(runbook.groups)}: {md(runbook.description)} {params}")
    for group in ops.vm_groups.values():
        lines.append(f"- group `{group.name}` ({group.environment}): {group.max_concurrency} at a time")
    head = request.t(
        f"没有 `vm {md(word, 40)}`。" if word else "", f"There is no `vm {md(word, 40)}`. " if word else ""
    )
    return Reply(title=request.t("主机", "vm"), ok=not word, text=head + "\n".join(lines))


@command(
    "vm run",
    area="ops",
    aliases=("主机 执行",),
    acts=True,
    verb=verbs.VM_RUN,
    parse=_parse,
    arguments=(Argument("runbook"), Argument("group")),
    usage="vm run <runbook> <group> [name=value …]",
    zh="在一组 VM 上执行 runbook（SSM Run Command）：先预览台数、并发和错误上限，确认后执行，陆续报告进度和汇总",
    en="Run a runbook on a VM group (SSM Run Command): a preview of how many, how many at a time and when to stop; "
    "your confirm; progress as instances finish; a summary",
    examples=("vm run restart-nginx shop-web-vms", "主机 执行 tail-log shop-web-vms lines=100 file=access.log"),
)
def vm_run(request: ChatRequest) -> Reply:
    from opsbot.ops import (
        run,
        vm,  # late: the registry, loaded at every cold start, needs only the verbs
    )

    ops = request.config.ops
    arguments = dict(request.arguments)
    runbook_name, group_name = str(arguments.pop("runbook")), str(arguments.pop("group"))
    runbook = ops.runbooks.get(runbook_name)
    if runbook is None:
        known = ", ".join(sorted(ops.runbooks)) or "-"
        raise UsageError(
            request.t(
                f"没有 runbook `{md(runbook_name, 60)}`。可用：{known}",
                f"no runbook `{md(runbook_name, 60)}`. Known: {known}",
            )
        )
    if group_name not in runbook.groups:
        raise UsageError(
            request.t(
                f"runbook {runbook.name} 只能在这些组上执行：{', '.join(runbook.groups)}",
                f"runbook {runbook.name} may run only on: {', '.join(runbook.groups)}",
            )
        )
    group = ops.vm_groups[group_name]
    try:
        chosen = vm.values(runbook, {str(k): str(v) for k, v in arguments.items()})
    except vm.ParameterError as exc:
        raise UsageError(md(str(exc), 300)) from None
    plan = vm.plan(runbook, group, chosen)
    if plan["instances"] == 0:
        raise UsageError(
            request.t(
                f"VM 组 {group.name} 现在没有运行中、且带 opsbot-ops=enabled 标签的实例。",
                f"group {group.name} has no running instance tagged opsbot-ops=enabled right now.",
            )
        )
    return run.preview(
        request.config,
        request.actor,
        request.record,
        verbs.VM_RUN,
        request.job_id[:8],
        group.environment,
        f"vm group {group.name}",
        f"runbook {runbook.name} on {group.name}",
        plan,
        request.language,
    )
