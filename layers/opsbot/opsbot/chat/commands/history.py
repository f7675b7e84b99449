"""history / 历史: the audit log, read back from chat."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from opsbot import audit
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.text import is_number

TEAM_TIME = timezone(timedelta(hours=8), "UTC+8")  # the team's clock (China Standard Time)
# How a command ended (audit.AuditRecord.result), as a person reads it.
RESULT_WORDS = {
    "answered": ("已回答", "answered"),
    "queued": ("处理中", "queued"),
    "succeeded": ("成功", "succeeded"),
    "failed": ("失败", "failed"),
    "denied": ("不允许", "denied"),
    "refused": ("被拒绝", "refused"),
    "usage": ("用法不对", "usage"),
    "unknown": ("未知命令", "unknown"),
}


def _parse(words: list[str]) -> dict:
    if len(words) > 2:
        raise UsageError(f"too many arguments: {md(' '.join(words[2:]), 80)}")
    found: dict = {}
    for word in words:
        if is_number(word) and "n" not in found:
            found["n"] = int(word.lstrip("#"))
        elif "project" not in found and not is_number(word):
            found["project"] = word
        else:
            raise UsageError(f"unexpected '{md(word, 40)}'")
    return found


@command(
    "history",
    area="general",
    aliases=("历史", "审计"),
    parse=_parse,
    arguments=(Argument("project", required=False), Argument("n", required=False, number=True)),
    zh="最近的命令记录（审计日志）",
    en="Recent commands from the audit log",
    examples=("history", "history shop-api 20", "历史 shop-api"),
)
def history(request: ChatRequest) -> Reply:
    name = ""
    if request.arguments.get("project"):
        name = request.project(request.arguments["project"]).name
    n = max(1, min(int(request.arguments.get("n") or 10), 30))
    records = audit.recent(name, n)
    title = request.t(f"{name} 历史", f"history {name}").strip()
    if not records:
        return Reply(title=title, project=name, text=request.t("还没有记录。", "Nothing recorded yet."))
    lines = [
        request.t(f"### 最近 {len(records)} 条记录", f"### Last {len(records)} records")
        + (f" · {name}" if name else "")
    ]
    for record in records:
        when = datetime.fromtimestamp(record.at_ms / 1000, TEAM_TIME).strftime("%m-%d %H:%M")
        said = md(" ".join([record.command, *(str(v) for v in record.arguments.values())]), 120)
        detail = f" — {md(record.detail, 200)}" if record.detail else ""
        result = request.t(*RESULT_WORDS.get(record.result, (md(record.result, 40),) * 2))
        lines.append(f"- {when} **{md(record.who_name, 60)}** `{said}` · {result}{detail}")
    return Reply(title=title, project=name, text="\n".join(lines))
