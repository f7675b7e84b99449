"""config / 配置: a project's effective config, as opsbot uses it. Robots' webhooks and secrets never appear."""
from __future__ import annotations

from opsbot.chat.context import ChatRequest, Reply
from opsbot.chat.registry import Argument, command


@command("config", aliases=("配置",), arguments=(Argument("project"),),
         zh="项目的生效配置（不含密钥）", en="A project's effective config (no secrets)",
         examples=("config shop-api", "配置 shop-api"))
def show_config(request: ChatRequest) -> Reply:
    project = request.project()
    notify = project.notify
    success = ", ".join(notify.on_success) or request.t("从不", "never")
    lines = [
        request.t(f"### {project.name} 的配置（版本 {request.config.version}）",
                  f"### {project.name} config (version {request.config.version})"),
        f"- repo: `{project.repo}`",
        f"- robot: `{project.robot}` · language: {project.language}",
        f"- notify: on_failure={notify.on_failure}, on_fixed={notify.on_fixed}, on_success=[{success}], "
        f"on_promote={notify.on_promote}, on_rollback={notify.on_rollback}",
    ]
    for env in project.environments.values():
        approvals = request.t(f"，需 {env.approvals} 人审批", f", {env.approvals} approval(s)") if env.approvals else ""
        lines.append(f"- env `{env.name}`: branch `{env.branch}`{approvals}")
    return Reply(title=f"config {project.name}", project=project.name, text="\n".join(lines))
