"""deploy / 部署, rollback / 回滚 and restart / 重试: the commands that change what runs. They act, so the
worker runs them through the queue and posts the outcome. What may be deployed, rolled back to or re-run, and
when a second person must approve, is the authorization core's to decide (release.deploy asks it).

An environment with a GitOps `deploy:` releases by a commit in its deploy repo (opsbot.promotion), and rolls back by
a revert of its newest release commit, or by writing an earlier build's or release's image; one that deploys with
Drone promotes and rolls back in Drone, as before."""

from __future__ import annotations

import re

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.drone.api import DroneRefused
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.release import deploy as release

FILLERS = ("to", "到", "至", "into")
_BUILD = re.compile(r"^#?[0-9]{1,7}$")  # a build number; anything else `rollback … to` takes is a release id
_RELEASE = re.compile(r"^[0-9a-f]{8}$")


def _ask(request: ChatRequest) -> release.Ask:
    # The first 8 characters of the msgId's job id: short enough to type as an approval id.
    conversation = request.inbound.conversation.fields() if request.inbound else {}
    return release.Ask(request.actor, request.record, request.language, request.job_id[:8], "chat", conversation)


def gitops() -> None:
    """Register the GitOps way (and its steps) before a release that may need it: late, since the registry loads at
    every cold start and only the worker releases."""
    from opsbot.promotion import way  # noqa: F401


@command(
    "deploy",
    area="release",
    aliases=("部署", "发布"),
    acts=True,
    verb=release.DEPLOY,
    needs_drone=True,
    fillers=FILLERS,
    environment_argument="env",
    usage="deploy <project> <build|branch> [to] <env>",
    arguments=(Argument("project"), Argument("build|branch"), Argument("env")),
    zh="把一个成功的构建发布到环境（Drone promote）；需要审批的环境会先发起审批",
    en="Deploy a successful build to an environment (Drone promote); environments with approvals open a request",
    examples=("deploy shop-api 128 to staging", "部署 shop-api 128 到 staging", "deploy shop-api main production"),
)
def deploy(request: ChatRequest) -> Reply:
    gitops()
    project = request.project()
    drone = request.drone()
    build = release.find_build(drone, project, request.arguments["build|branch"], request.language)
    return release.release(
        request.config, drone, _ask(request), project, str(request.arguments["env"]), build, "deploy"
    )


@command(
    "rollback",
    area="release",
    aliases=("回滚",),
    acts=True,
    verb=release.ROLLBACK,
    needs_drone=True,
    fillers=FILLERS,
    environment_argument="env",
    usage="rollback <project> <env> [to <build|release>]",
    arguments=(Argument("project"), Argument("env"), Argument("build|release", required=False)),
    zh="回滚环境：GitOps 环境 revert 最新的发布提交，或写回某个构建/发布的镜像；"
    "Drone 环境回到上一次成功的发布或指定构建",
    en="Roll an environment back: a GitOps environment reverts its newest release commit, or writes back a build's "
    "or release's image; a Drone one goes back to its previous deployment, or to the given build",
    examples=("rollback shop-api staging", "回滚 shop-api production 到 120", "rollback shop-api staging to 3f9a2c1b"),
)
def rollback(request: ChatRequest) -> Reply:
    gitops()
    project = request.project()
    env = str(request.arguments["env"])
    if env not in project.environments:
        raise release.ReleaseRefused(
            request.t(
                f"项目 {project.name} 没有环境 `{md(env, 40)}`。",
                f"project {project.name} has no environment `{md(env, 40)}`.",
            )
        )
    drone = request.drone()
    word = str(request.arguments.get("build|release") or "").lower()
    is_gitops = project.environments[env].deploy is not None
    if word and not _BUILD.match(word) and not (is_gitops and _RELEASE.match(word)):
        raise UsageError(
            request.t(
                f"`{md(word, 20)}` 既不是构建号也不是 GitOps 发布的 id（8 位十六进制）",
                f"`{md(word, 20)}` is neither a build number nor a GitOps release id (8 hex digits)",
            )
        )
    if is_gitops and not word:  # a revert of the newest release commit, back to the release before it
        from opsbot.promotion import way

        undo = way.rollback_target(request.config, project, env, request.language, _ask(request).request_id)
        back_to = None
        if undo.back_to is not None and undo.back_to.build:
            back_to = release.rollback_origin(drone, project, undo.back_to.build, request.language)
        return release.release(request.config, drone, _ask(request), project, env, back_to, "revert", undo.commit)
    if word and not _BUILD.match(word):  # a GitOps release: its build's image, written again
        from opsbot.promotion import way

        number = way.release_build(request.config, project, env, word, request.language)
    elif word:
        number = int(word.lstrip("#"))
    else:
        number = release.previous_deploy(drone, project, env, request.language)
    build = release.rollback_origin(drone, project, int(number), request.language)
    return release.release(request.config, drone, _ask(request), project, env, build, "rollback")


@command(
    "restart",
    area="release",
    aliases=("重试", "重新构建", "重启"),
    acts=True,
    verb=release.RESTART,
    needs_drone=True,
    arguments=(Argument("project"), Argument("build", number=True)),
    zh="重新运行一个构建（Drone restart）；发布（promote、rollback）不会被重新运行",
    en="Run a build again (Drone restart); deployments (promote, rollback) are never run again",
    examples=("restart shop-api 127", "重试 shop-api 127"),
)
def restart(request: ChatRequest) -> Reply:
    project = request.project()
    drone = request.drone()
    number = int(request.arguments["build"])
    try:
        build = drone.build(project.repo, number)
        started = release.restart(request.config, drone, _ask(request), project, build)
    except DroneRefused as exc:
        return Reply(
            title=request.t("重试失败", "restart failed"),
            ok=False,
            project=project.name,
            detail=f"Drone refused: {exc.message}",
            text=t(
                request.language,
                f"### ❌ 重试 {project.name} #{number} 失败\n\nDrone：{md(exc.message)}",
                f"### ❌ Restart of {project.name} #{number} failed\n\nDrone: {md(exc.message)}",
            ),
        )
    link = drone.ui_link(project.repo, started.get("number"))
    return Reply(
        title=request.t(f"重试 {project.name}", f"restart {project.name}"),
        project=project.name,
        detail=f"restarted #{number} as #{started.get('number')}",
        text=request.t(
            f"### 🔄 已重新运行 {project.name} #{number}：[#{started.get('number')}]({link})",
            f"### 🔄 Restarted {project.name} #{number} as [#{started.get('number')}]({link})",
        ),
    )
