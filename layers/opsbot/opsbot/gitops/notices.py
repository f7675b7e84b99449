"""What the ops group is told about config syncs, in the config's language. Errors link to the file and line
at the pushed commit, and the pusher is @-mentioned when they are in `people`."""

from __future__ import annotations

from collections.abc import Callable

from opsbot.config.model import Config, Person
from opsbot.gitlab.events import Push
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.markup import link_target
from opsbot.message import Mentions, Reply

# Every problem up to this many (the rest is counted): each channel shows what fits its size and summarises the rest
# (opsbot.channels.markdown.fit); the cap keeps the stored notice well inside a DynamoDB item.
MAX_PROBLEMS = 200


def _who(push: Push, person: Person | None) -> str:
    return person.name if person else md(push.user_name or push.user_username or "?", 60)


def _commit_link(push: Push) -> str:
    url = link_target(f"{push.web_url}/-/commit/{push.after}") if push.web_url else ""
    return f"[{md(push.after[:8])}]({url})" if url else md(push.after[:8])


def sync_failed(
    config: Config,
    push: Push,
    problems: list[tuple[str, int, str]],
    pusher: Person | None,
    in_repo: Callable[[str], str],
) -> Reply:
    lines = [
        t(config.language, f"### ❌ 配置没有同步 · {push.after[:8]}", f"### ❌ Config not synced · {push.after[:8]}"),
        t(
            config.language,
            f"{_who(push, pusher)} 推送的 {_commit_link(push)}（{md(push.title)}）有 {len(problems)} 处错误，"
            f"opsbot 继续使用版本 `{config.version[:8]}`。修正后再推送即可：",
            f"{_who(push, pusher)} pushed {_commit_link(push)} ({md(push.title)}) with {len(problems)} problem(s); "
            f"opsbot keeps version `{config.version[:8]}`. Fix and push again:",
        ),
        "",
    ]
    for name, line, message in problems[:MAX_PROBLEMS]:
        where = md(f"{name}:{line}" if line else name, 120)
        url = (
            link_target(f"{push.web_url}/-/blob/{push.after}/{in_repo(name)}" + (f"#L{line}" if line else ""))
            if push.web_url
            else ""
        )
        lines.append(f"- {f'[{where}]({url})' if url else where}: {md(message, 300)}")
    if len(problems) > MAX_PROBLEMS:
        lines.append(
            t(
                config.language,
                f"- 还有 {len(problems) - MAX_PROBLEMS} 处……",
                f"- and {len(problems) - MAX_PROBLEMS} more…",
            )
        )
    return Reply(
        title=t(config.language, "配置没有同步", "Config not synced"),
        text="\n".join(lines),
        ok=False,
        mentions=Mentions.of(pusher),
        detail=f"config {push.after[:8]} invalid: {len(problems)} problem(s)",
    )


def synced(config: Config, new: Config, push: Push, touched: list[str] | None, pusher: Person | None) -> Reply:
    added = sorted(set(new.projects) - set(config.projects))
    removed = sorted(set(config.projects) - set(new.projects))
    lines = [
        t(config.language, f"### ✅ 配置已同步 · {push.after[:8]}", f"### ✅ Config synced · {push.after[:8]}"),
        t(
            config.language,
            f"{_who(push, pusher)} 推送了 {_commit_link(push)}：{md(push.title)}",
            f"{_who(push, pusher)} pushed {_commit_link(push)}: {md(push.title)}",
        ),
        "",
    ]
    if touched:
        lines.append(
            t(config.language, "- 改动的文件：", "- Files changed: ") + ", ".join(f"`{md(p, 120)}`" for p in touched)
        )
    if added:
        lines.append(t(config.language, "- 新增项目：", "- Projects added: ") + ", ".join(added))
    if removed:
        lines.append(t(config.language, "- 移除项目：", "- Projects removed: ") + ", ".join(removed))
    lines.append(
        t(
            config.language,
            f"- 现在 {len(new.projects)} 个项目。要回到上一个版本：`@opsbot config rollback {config.version[:8]}`",
            f"- {len(new.projects)} projects now. To go back: `@opsbot config rollback {config.version[:8]}`",
        )
    )
    return Reply(
        title=t(config.language, "配置已同步", "Config synced"),
        text="\n".join(lines),
        detail=f"config synced to {push.after[:8]}",
    )


def gitlab_refused(config: Config, push: Push, error: Exception) -> Reply:
    return Reply(
        title=t(config.language, "配置同步失败", "Config sync failed"),
        ok=False,
        detail=str(error)[:200],
        text=t(
            config.language,
            f"### ❌ 配置同步失败 · {push.after[:8]}\n\nGitLab 拒绝了 opsbot 的请求：{md(error, 300)}\n\n"
            "请检查 opsbot.yaml 里的 gitlab.token 和 gitlab.config_repo；修好后从死信队列重放这个任务。",
            f"### ❌ Config sync failed · {push.after[:8]}\n\nGitLab refused opsbot: {md(error, 300)}\n\n"
            "Check gitlab.token and gitlab.config_repo in opsbot.yaml, then redrive the job from the "
            "dead-letter queue.",
        ),
    )
