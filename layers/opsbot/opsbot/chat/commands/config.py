"""config / 配置: a project's effective config, as opsbot uses it (robots' webhooks and secrets never appear);
`config history`, the saved versions; `config rollback <version>`, an earlier version made current again."""

from __future__ import annotations

from datetime import datetime

from opsbot.chat.commands.history import TEAM_TIME
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.config import store
from opsbot.config.model import ConfigError
from opsbot.markup import dingtalk as md
from opsbot.message import Reply


@command(
    "config",
    aliases=("配置",),
    arguments=(Argument("project"),),
    zh="项目的生效配置（不含密钥）",
    en="A project's effective config (no secrets)",
    examples=("config shop-api", "配置 shop-api"),
)
def show_config(request: ChatRequest) -> Reply:
    project = request.project()
    notify = project.notify
    success = ", ".join(notify.on_success) or request.t("从不", "never")
    lines = [
        request.t(
            f"### {project.name} 的配置（版本 {request.config.version}）",
            f"### {project.name} config (version {request.config.version})",
        ),
        f"- repo: `{project.repo}`",
        f"- robot{'s' if len(project.robots) > 1 else ''}: {', '.join(f'`{r}`' for r in project.robots)}"
        f" · language: {project.language}",
        f"- notify: on_failure={notify.on_failure}, on_fixed={notify.on_fixed}, on_success=[{success}], "
        f"on_promote={notify.on_promote}, on_rollback={notify.on_rollback}",
    ]
    for env in project.environments.values():
        approvals = request.t(f"，需 {env.approvals} 人审批", f", {env.approvals} approval(s)") if env.approvals else ""
        lines.append(f"- env `{env.name}`: branch `{env.branch}`{approvals}")
    pipeline = project.pipeline
    lines.append(
        f"- pipeline: language={pipeline.language or request.t('自动检测', 'detected')}, "
        f"image=`{pipeline.image or project.repo.lower()}`, init_on_push={pipeline.init_on_push}"
        + (f", test_command=`{'; '.join(pipeline.test_command)}`" if pipeline.test_command else "")
    )
    return Reply(title=f"config {project.name}", project=project.name, text="\n".join(lines))


@command(
    "config history",
    aliases=("配置 历史",),
    arguments=(Argument("n", required=False, number=True),),
    zh="配置的版本记录：谁在何时同步或回滚了哪个版本",
    en="Config versions: what was synced or rolled back, when, by whom",
    examples=("config history", "配置 历史 20"),
)
def config_history(request: ChatRequest) -> Reply:
    versions = store.history(max(1, min(int(request.arguments.get("n") or 10), 30)))
    if not versions:
        return Reply(title="config history", text=request.t("还没有保存过配置。", "No config has been saved yet."))
    lines = [request.t(f"### 最近 {len(versions)} 个配置版本", f"### Last {len(versions)} config versions")]
    for index, version in enumerate(versions):
        when = datetime.fromtimestamp(version.saved_at, TEAM_TIME).strftime("%m-%d %H:%M")
        now = request.t(" ← 当前", " ← current") if index == 0 else ""
        lines.append(f"- {when} `{md(version.version[:8])}` {md(version.source, 200)}{now}")
    lines.append(request.t("回滚：`@opsbot config rollback <版本>`", "Roll back: `@opsbot config rollback <version>`"))
    return Reply(title="config history", text="\n".join(lines))


@command(
    "config rollback",
    aliases=("配置 回滚",),
    acts=True,
    role="ops",
    arguments=(Argument("version"),),
    zh="把配置恢复到之前的一个版本（配置仓库不变）",
    en="Restore an earlier config version (the config repo stays as it is)",
    examples=("config rollback 3f9a2c1b", "配置 回滚 3f9a2c1b"),
)
def config_rollback(request: ChatRequest) -> Reply:
    wanted = str(request.arguments["version"]).strip()
    if len(wanted) < 4:
        raise UsageError(request.t("版本至少写 4 位。", "give at least 4 characters of the version."))
    try:
        version, documents = store.find_version(wanted)
    except LookupError as exc:
        raise UsageError(str(exc)) from None
    current = store.load().version
    if version == current:
        return Reply(
            title="config rollback",
            text=request.t(f"当前已经是版本 `{version[:8]}`。", f"Version `{version[:8]}` is already the current one."),
        )
    try:
        restored = store.save(documents, version, source=f"rollback by {request.sender}")
    except ConfigError as exc:  # valid then, but not under today's rules (say, literal secrets outside local)
        problems = "\n".join(f"- {line}" for line in exc.lines()[:10])
        return Reply(
            title="config rollback failed",
            ok=False,
            detail=f"version {version[:8]} is invalid now",
            text=request.t(
                f"❌ 版本 `{version[:8]}` 现在不能通过校验：\n\n{problems}",
                f"❌ Version `{version[:8]}` does not validate now:\n\n{problems}",
            ),
        )
    return Reply(
        title="config rollback",
        detail=f"config rolled back from {current[:8]} to {version[:8]}",
        text=request.t(
            f"### ↩️ 配置已回滚到 `{version[:8]}`（{len(restored.projects)} 个项目），之前是 `{current[:8]}`。\n\n"
            "配置仓库没有变：下一次推送会再次同步仓库的内容，请同时在仓库里 revert。",
            f"### ↩️ Config rolled back to `{version[:8]}` ({len(restored.projects)} projects), "
            f"from `{current[:8]}`.\n\n"
            "The config repo is unchanged: its next push is synced as usual, so revert there too.",
        ),
    )
