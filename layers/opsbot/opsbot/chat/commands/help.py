"""help / 帮助: generated from the registry, so it never disagrees with what the bot can do. In one language at a time
(the one the person wrote in), grouped by area (registry.AREAS), with `help <command>` for one command's details."""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.parser import has_chinese
from opsbot.chat.registry import AREAS, REGISTRY, Argument, Command, UsageError, command
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply


def names(cmd: Command, language: str) -> str:
    """What a reader of `language` types: a Chinese reader its first Chinese name and its English one; an English
    reader its English names."""
    others = [a for a in cmd.aliases if not has_chinese(a)]
    shown = tuple(dict.fromkeys((cmd.called("zh"), cmd.name))) if language == "zh" else (cmd.name, *others)
    return " / ".join(f"`{n}`" for n in shown)


def examples(cmd: Command, language: str) -> list[str]:
    """The command's examples written in `language` (all of them when none is)."""
    mine = [e for e in cmd.examples if has_chinese(e) == (language == "zh")]
    return mine or list(cmd.examples)


def kind_of(cmd: Command, language: str) -> str:
    if cmd.acts:
        kind = t(
            language,
            "执行类：先回复“收到”，结果稍后发到群里",
            "acts: acknowledged at once, the result is posted to the group",
        )
    else:
        kind = t(language, "查询类：立即回复", "reads: answered at once")
    if cmd.needs_drone:
        kind += t(language, "；需要 Drone", "; needs Drone")
    if cmd.needs_gitlab:
        kind += t(language, "；需要 GitLab", "; needs GitLab")
    return kind


def detail(cmd: Command, language: str) -> str:
    area = AREAS[cmd.area][0 if language == "zh" else 1]
    role = cmd.role or t(language, "所有人", "anyone")
    lines = [
        f"#### {names(cmd, language)}",
        f"`{cmd.usage()}`",
        cmd.summary[language if language in cmd.summary else "en"],
        f"{t(language, '类别', 'Area')}: {area} · {t(language, '权限', 'Role')}: {role} · {kind_of(cmd, language)}",
    ]
    shown = examples(cmd, language)
    if shown:
        lines.append(t(language, "例子", "Examples") + ":\n\n" + "\n".join(f"- `@opsbot {e}`" for e in shown))
    return "\n\n".join(lines)


def overview(language: str) -> str:
    """Every command, grouped by area, in `language`."""
    parts = [t(language, "### opsbot 命令", "### opsbot commands")]
    for area, commands in REGISTRY.by_area().items():
        if not commands:
            continue
        heading = AREAS[area][0 if language == "zh" else 1]
        rows = [f"- {names(cmd, language)} — {cmd.summary[language]}" for cmd in commands]
        if area == "review":
            rows.append(
                t(
                    language,
                    "- 合并请求的评审命令（`/lgtm`、`/approve`……）写在 GitLab 的评论里",
                    "- merge-request review commands (`/lgtm`, `/approve`, …) go in GitLab comments",
                )
            )
        parts.append(f"**{heading}**\n\n" + "\n".join(rows))
    parts.append(
        t(
            language,
            "发送 `帮助 <命令>` 查看用法和例子，比如 `帮助 部署`。也可以直接提问，我会在常见问题里找答案。",
            "Send `help <command>` for usage and examples, e.g. `help deploy`. Or just ask a question: I look it "
            "up in the FAQ.",
        )
    )
    return "\n\n".join(parts)


@command(
    "help",
    area="general",
    aliases=("帮助", "?"),
    arguments=(Argument("command", required=False),),
    parse=lambda words: {"command": " ".join(words)} if words else {},  # a subcommand is two words
    zh="列出所有命令，或查看某个命令的用法",
    en="List every command, or show how to use one",
    examples=("help", "帮助 部署", "help deploy"),
)
def show_help(request: ChatRequest) -> Reply:
    # Every command is registered (and in help order) once chat runs a command.
    wanted = request.arguments.get("command")
    if wanted:
        cmd = REGISTRY.lookup(str(wanted))
        if cmd is None:
            raise UsageError(
                request.t(
                    f"没有命令 `{md(str(wanted), 40)}`。发送 `帮助` 查看全部命令。",
                    f"no command `{md(str(wanted), 40)}`. Send `help` for the list.",
                )
            )
        return Reply(
            title=request.t(f"帮助：{cmd.called('zh')}", f"help: {cmd.name}"), text=detail(cmd, request.language)
        )
    return Reply(title=request.t("opsbot 帮助", "opsbot help"), text=overview(request.language))
