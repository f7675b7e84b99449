"""Deploying and rolling back builds through Drone, under the environment's rules.

An environment says which branch it takes (`branch`, a glob) and how many people must approve
(`approvals`). `request()` is the one entrance for chat commands and release links alike: it checks the
rules, then either starts the Drone promote/rollback or, where approvals are needed, opens a request.
"""
from __future__ import annotations

import fnmatch
import time

from opsbot.chat.context import Reply
from opsbot.chat.registry import is_number
from opsbot.config.model import Config, Environment, Project
from opsbot.drone.api import DroneClient, DroneRefused
from opsbot.notify.policy import build_branch
from opsbot.release import approvals
from opsbot.state import effects

DEPLOYMENTS = ("promote", "rollback")


class ReleaseRefused(Exception):
    """The environment's rules say no; the message says why, in the person's language."""


def _t(language: str, zh: str, en: str) -> str:
    return zh if language == "zh" else en


def environment(project: Project, name: str, language: str) -> Environment:
    env = project.environments.get(name)
    if env is None:
        known = ", ".join(project.environments) or "-"
        raise ReleaseRefused(_t(language, f"项目 {project.name} 没有环境 `{name}`。可用环境：{known}",
                                f"project {project.name} has no environment `{name}`. Environments: {known}"))
    return env


def find_build(drone: DroneClient, project: Project, ref: str | int, language: str) -> dict:
    """A build by number, or the newest successful build of a branch."""
    if isinstance(ref, int) or is_number(str(ref)):
        try:
            return drone.build(project.repo, int(str(ref).lstrip("#")))
        except DroneRefused as exc:
            if exc.status == 404:
                raise ReleaseRefused(_t(language, f"{project.name} 没有构建 #{ref}。",
                                        f"{project.name} has no build #{ref}.")) from None
            raise
    for build in drone.builds(project.repo, branch=str(ref), per_page=50):
        if build.get("status") == "success" and build.get("event") not in DEPLOYMENTS:
            return build
    raise ReleaseRefused(_t(language, f"分支 {ref} 最近没有成功的构建。", f"branch {ref} has no recent successful build."))


def check_deployable(project: Project, env: Environment, build: dict, language: str) -> None:
    number, status, branch = build.get("number"), build.get("status"), build_branch(build)
    if build.get("event") in DEPLOYMENTS:
        raise ReleaseRefused(_t(language, f"#{number} 本身是一次发布；请发布它的来源构建 #{build.get('parent')}。",
                                f"#{number} is itself a deployment; deploy the build it came from, "
                                f"#{build.get('parent')}."))
    if status != "success":
        raise ReleaseRefused(_t(language, f"{project.name} #{number} 的状态是 {status}，只能发布成功的构建。",
                                f"{project.name} #{number} is {status}; only successful builds can be deployed."))
    if env.branch and not fnmatch.fnmatchcase(branch, env.branch):
        raise ReleaseRefused(_t(language, f"{env.name} 只接受 {env.branch} 分支的构建，#{number} 来自 {branch}。",
                                f"{env.name} takes builds of {env.branch}; #{number} is from {branch}."))


def request(config: Config, drone: DroneClient, project: Project, env: Environment, build: dict, action: str,
            requester: str, requester_name: str, language: str, request_id: str) -> Reply:
    """Deploy or roll back now, or open an approval request when the environment needs one."""
    if env.approvals:
        opened = approvals.create(approvals.ApprovalRequest(
            id=request_id, action=action, project=project.name, target=env.name, build=int(build["number"]),
            commit=str(build.get("after") or ""), branch=build_branch(build), requester=requester,
            requester_name=requester_name, needed=env.approvals,
            deadline=int(time.time()) + config.approval_hours * 3600))
        return approval_opened(opened, language)
    return execute(drone, project, env.name, int(build["number"]), action, requester_name, language)


def approval_opened(request: approvals.ApprovalRequest, language: str) -> Reply:
    verb = _t(language, "发布" if request.action == "deploy" else "回滚到", request.action)
    hours = max(1, round((request.deadline - time.time()) / 3600))
    text = _t(
        language,
        f"### 🔐 审批请求 `{request.id}`\n\n{request.requester_name} 请求{verb} **{request.project}** "
        f"#{request.build}（{request.branch} · {request.commit[:8]}）到 **{request.target}**。\n\n"
        f"需要 {request.needed} 位其他同事批准：`@opsbot approve {request.id}`，或拒绝：`@opsbot reject {request.id}`"
        f"（{hours} 小时内有效）",
        f"### 🔐 Approval request `{request.id}`\n\n{request.requester_name} asks to {verb} **{request.project}** "
        f"#{request.build} ({request.branch} · {request.commit[:8]}) to **{request.target}**.\n\n"
        f"Needs {request.needed} approval(s) from someone else: `@opsbot approve {request.id}`, or "
        f"`@opsbot reject {request.id}` (valid for {hours} h)",
    )
    return Reply(title=_t(language, f"审批请求 {request.id}", f"Approval request {request.id}"), text=text,
                 project=request.project, detail=f"approval {request.id} opened for {request.target}")


def execute(drone: DroneClient, project: Project, target: str, number: int, action: str, by: str,
            language: str) -> Reply:
    """The Drone call itself. Drone saying no becomes a failed Reply with Drone's reason."""
    verb = _t(language, "发布" if action == "deploy" else "回滚", "deploy" if action == "deploy" else "rollback")
    try:
        if action == "deploy":
            started = drone.promote(project.repo, number, target, {"OPSBOT_REQUESTED_BY": by})
        else:
            started = drone.rollback(project.repo, number, target)
    except DroneRefused as exc:
        return Reply(title=_t(language, f"{verb}失败", f"{verb} failed"), ok=False, project=project.name,
                     text=_t(language, f"### ❌ {project.name} #{number} {verb}到 {target} 失败\n\nDrone：{exc.message}",
                             f"### ❌ {verb.capitalize()} of {project.name} #{number} to {target} failed\n\n"
                             f"Drone: {exc.message}"),
                     detail=f"Drone refused: {exc.message}")
    link = drone.ui_link(project.repo, started.get("number", number))
    return Reply(
        title=_t(language, f"已开始{verb} {project.name}", f"{verb} of {project.name} started"), project=project.name,
        text=_t(language,
                f"### 🚀 已开始{verb} {project.name} #{number} → {target}\n\n"
                f"Drone 构建 [#{started.get('number')}]({link})，发起人 {by}。完成后会通知本群。",
                f"### 🚀 {verb.capitalize()} of {project.name} #{number} → {target} started\n\n"
                f"Drone build [#{started.get('number')}]({link}), by {by}. The group hears when it finishes."),
        detail=f"{action} #{number} to {target}: Drone build #{started.get('number')}",
    )


def execute_approved(config: Config, drone: DroneClient, request: approvals.ApprovalRequest, language: str) -> Reply:
    """The Drone call of an approved request, once per request however many times it is asked for."""
    project = config.projects.get(request.project)
    if project is None:
        raise ReleaseRefused(_t(language, f"项目 {request.project} 已不在配置中。",
                                f"project {request.project} is no longer configured."))
    by = f"{request.requester_name} ✔ {', '.join(request.approvers)}"
    result = effects.once(f"approved#{request.id}", lambda: execute(
        drone, project, request.target, request.build, request.action, by, language).as_dict())
    return Reply.from_dict(result)


def previous_deploy(drone: DroneClient, project: Project, target: str, language: str) -> int:
    """The build that the environment ran before its current deployment."""
    deploys = [b for b in drone.builds(project.repo, per_page=100)
               if b.get("event") in DEPLOYMENTS and b.get("deploy_to") == target and b.get("status") == "success"]
    deploys.sort(key=lambda b: int(b.get("number") or 0), reverse=True)
    origins = [int(b.get("parent") or b["number"]) for b in deploys]
    # The first origin that differs from what runs now: redeploying the same build is not a version to go back to.
    earlier = next((origin for origin in origins[1:] if origins and origin != origins[0]), None)
    if earlier is None:
        raise ReleaseRefused(_t(language, f"{target} 没有更早的成功发布可以回滚。",
                                f"{target} has no earlier successful deployment to roll back to."))
    return earlier

