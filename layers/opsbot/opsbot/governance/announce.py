"""A freeze window that opens within the hour is announced once in each affected project's groups: one message per
project and window (naming the environments it holds there), sent once per robot under `freeze#<project>#<window>`
(delivery's post_once), however many scheduled ticks see it coming."""

from __future__ import annotations

from opsbot.authz import freezes as freeze_windows
from opsbot.config.model import Config
from opsbot.delivery.post import post_once
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply

ANNOUNCE_MINUTES = 60


def notice(project: str, environments: list[str], window: freeze_windows.Window, language: str) -> Reply:
    freeze = window.freeze
    envs = ", ".join(environments)
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
                t(language, f"- 项目：{project}（{envs}）", f"- Project: {project} ({envs})"),
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
        project=project,
        detail=f"freeze {freeze.name} announced for {project} ({envs})",
    )


def announce_due(config: Config, now: float) -> list[str]:
    """Announce every window opening within the hour, once per project; what was (or had been) announced."""
    told = []
    moment = freeze_windows.utc(now)
    for project in config.projects.values():
        by_window: dict[str, tuple[freeze_windows.Window, list[str]]] = {}
        for env in project.environments:
            freezes = freeze_windows.freezes_for(config, project.name, env)
            for window in freeze_windows.starting_within(freezes, moment, ANNOUNCE_MINUTES):
                if window.end > moment:
                    by_window.setdefault(window.key, (window, []))[1].append(env)
        for key, (window, envs) in by_window.items():
            post_once(config, notice(project.name, envs, window, project.language), f"freeze#{project.name}#{key}")
            told.append(f"{project.name}:{window.freeze.name}")
    return told
