"""config / 配置: a project's effective config, as opsbot uses it (robots' webhooks and secrets never appear);
`config history`, the saved versions; `config rollback <version>`, an earlier version committed back on the config
repo's branch (gitops/config_rollback.py: Git stays the truth, and the push is synced as any push)."""

from __future__ import annotations

from datetime import datetime

from opsbot.authz import core as authz
from opsbot.chat.commands.history import TEAM_TIME
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.config import store
from opsbot.gitops.verbs import ROLLBACK
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
    verb=ROLLBACK,
    needs_gitlab=True,
    arguments=(Argument("version"),),
    zh="在配置仓库里提交一个回到之前版本的提交（推送照常同步）；改动 people 或 permissions 需另一位 admin 批准",
    en="Commit an earlier version's config on the config repo's branch (synced like any push); a change to people "
    "or permissions needs another admin's approval",
    examples=("config rollback 3f9a2c1b", "配置 回滚 3f9a2c1b"),
)
def config_rollback(request: ChatRequest) -> Reply:
    from opsbot.gitops import config_rollback as rollback  # late: GitLab's client only where a rollback runs

    wanted = str(request.arguments["version"]).strip()
    if len(wanted) < 4:
        raise UsageError(request.t("版本至少写 4 位。", "give at least 4 characters of the version."))
    planned = rollback.plan(request.config, wanted, request.language)
    if not planned.actions:
        return rollback.already(planned, request.config, request.language)
    decision = request.authorize(ROLLBACK, planned.target())
    if decision.outcome == authz.NEEDS_APPROVAL:
        opened = rollback.request_approval(
            request.config, planned, request.job_id[:8], request.actor, decision.approvals, request.language
        )
        return rollback.approval_opened(planned, opened, request.language)
    return rollback.execute(request.config, planned, request.sender, (), request.language)
