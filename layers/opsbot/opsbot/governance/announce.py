"""A freeze window that opens within the hour is announced once in each affected group: one message per robot and
window, naming every project (and its environments) it holds among that robot's projects, sent once under
`freeze#<robot>#<window>` (delivery's run-once send per robot), however many scheduled ticks see it coming."""

from __future__ import annotations

from opsbot.authz import freezes as freeze_windows
from opsbot.config.model import Config
from opsbot.delivery.post import to_robots
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.state import keys

ANNOUNCE_MINUTES = 60


def notice(held: dict[str, list[str]], window: freeze_windows.Window, language: str) -> Reply:
    """The announcement of `window` for the projects it holds (project -> its environments)."""
    freeze = window.freeze
    project = ", ".join(held)
    envs = "; ".join(f"{name}: {', '.join(envs)}" for name, envs in held.items())
    return Reply(
        title=t(language, f"封网通知：{project}", f"change freeze: {project}"),
        text="\n".join(
            [
                t(
                    language,
                    f"### 🧊 封网即将开始：{md(freeze.name, 64)}",
                    f"### 🧊 Change freeze ahead: {md(freeze.name, 64)}",
                ),
                "",
                t(language, f"- 项目：{envs}", f"- Projects: {envs}"),
                t(language, f"- 时间：{window.describe()}", f"- When: {window.describe()}"),
                t(language, f"- 原因：{md(freeze.reason, 200)}", f"- Why: {md(freeze.reason, 200)}"),
                "",
                t(
                    language,
                    "封网期间发布、回滚和运维变更都会被拒绝；确需发布：管理员 `override <项目> <环境> <原因>`，"
                    "另一位管理员批准。`freeze` 查看所有封网窗口。",
                    "Releases, rollbacks and ops changes are refused while it holds; to release anyway an admin asks "
                    "`override <project> <env> <reason>` and a second admin approves. `freeze` lists the windows.",
                ),
            ]
        ),
        detail=f"freeze {freeze.name} announced for {envs}"[:200],
    )


def announce_due(config: Config, now: float) -> list[str]:
    """Announce every window opening within the hour, once per robot; what was (or had been) announced."""
    moment = freeze_windows.utc(now)
    # (robot, window key) -> the window, the projects it holds there with their environments, the language
    found: dict[tuple[str, str], tuple[freeze_windows.Window, dict[str, list[str]], str]] = {}
    for project in config.projects.values():
        for env in project.environments:
            freezes = freeze_windows.freezes_for(config, project.name, env)
            for window in freeze_windows.starting_within(freezes, moment, ANNOUNCE_MINUTES):
                if window.end <= moment:
                    continue
                for robot in project.robots:
                    entry = found.setdefault((robot, window.key), (window, {}, project.language))
                    entry[1].setdefault(project.name, []).append(env)
    told = []
    for (robot, key), (window, held, language) in found.items():
        reply = notice(held, window, language)
        once = f"freeze#{robot}#{key}"
        to_robots(config, lambda reply=reply, language=language: reply.as_message(language), (robot,), once,
                  keys.TOLD + once)  # fmt: skip
        told.append(f"{robot}:{window.freeze.name}")
    return told
