"""help / 帮助: generated from the registry, so it never disagrees with what the bot can do."""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import REGISTRY, Argument, Command, UsageError, command
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply


def names(cmd: Command) -> str:
    return " / ".join(f"`{n}`" for n in (cmd.name, *cmd.aliases))


def detail(cmd: Command, language: str) -> str:
    if cmd.acts:
        kind = t(
            language,
            "执行类：先回复“收到”，结果稍后发到群里",
            "acts: acknowledged at once, the result is posted to the group",
        )
    else:
        kind = t(language, "查询类：立即回复", "reads: answered at once")
    role = cmd.role or t(language, "所有人", "anyone")
    if cmd.needs_drone:
        kind += t(language, "；需要 Drone", "; needs Drone")
    if cmd.needs_gitlab:
        kind += t(language, "；需要 GitLab", "; needs GitLab")
    lines = [
        f"#### {names(cmd)}",
        f"`{cmd.usage()}`",
        cmd.summary["zh"],
        cmd.summary["en"],
        f"{t(language, '权限', 'Role')}: {role} · {kind}",
    ]
    if cmd.examples:
        lines.append(t(language, "例子", "Examples") + ":\n\n" + "\n".join(f"- `@opsbot {e}`" for e in cmd.examples))
    return "\n\n".join(lines)


@command(
    "help",
    aliases=("帮助", "?"),
    arguments=(Argument("command", required=False),),
    parse=lambda words: {"command": " ".join(words)} if words else {},  # a subcommand is two words
    zh="列出所有命令，或查看某个命令的用法",
    en="List every command, or show how to use one",
    examples=("help", "帮助 部署", "help deploy"),
)
def show_help(request: ChatRequest) -> Reply:
    registry = REGISTRY  # every command is registered (and in help order) once chat runs a command
    wanted = request.arguments.get("command")
    if wanted:
        cmd = registry.lookup(str(wanted))
        if cmd is None:
            raise UsageError(
                request.t(
                    f"没有命令 `{md(wanted, 40)}`。发送 `help` 查看全部命令。",
                    f"no command `{md(wanted, 40)}`. Send `help` for the list.",
                )
            )
        return Reply(title=f"help {cmd.name}", text=detail(cmd, request.language))
    lines = [request.t("### opsbot 命令", "### opsbot commands")]
    for cmd in registry.commands.values():
        lines.append(f"- {names(cmd)} — {cmd.summary['zh']} · {cmd.summary['en']}")
    lines.append(
        request.t(
            "发送 `help <命令>` 查看用法和例子。也可以直接提问，我会在 FAQ 里找答案。",
            "Send `help <command>` for usage and examples. Or just ask a question: I look it up in the FAQ.",
        )
    )
    return Reply(title="opsbot help", text="\n\n".join(lines))
