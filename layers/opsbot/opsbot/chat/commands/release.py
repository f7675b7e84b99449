"""deploy / 部署, rollback / 回滚 and restart / 重试: the commands that change what runs. They act, so the
worker runs them through the queue and posts the outcome. What may be deployed, rolled back to or re-run, and
when a second person must approve, is the authorization core's to decide (release.deploy asks it)."""

from __future__ import annotations

from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, command
from opsbot.drone.api import DroneRefused
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.release import deploy as release

FILLERS = ("to", "到", "至", "into")


def _ask(request: ChatRequest) -> release.Ask:
    # The first 8 characters of the msgId's job id: short enough to type as an approval id.
    return release.Ask(request.actor, request.record, request.language, request.job_id[:8])


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
    environment_argument="env",
    arguments=(Argument("project"), Argument("env"), Argument("build", required=False, number=True)),
    zh="把环境回滚到上一次成功的发布，或指定的构建",
    en="Roll an environment back to its previous successful deployment, or to the given build",
    examples=("rollback shop-api staging", "回滚 shop-api production 120"),
)
def rollback(request: ChatRequest) -> Reply:
    project = request.project()
    env = str(request.arguments["env"])
    drone = request.drone()
    number = request.arguments.get("build")
    if number is None:
        if env not in project.environments:
            raise release.ReleaseRefused(
                request.t(
                    f"项目 {project.name} 没有环境 `{md(env, 40)}`。",
                    f"project {project.name} has no environment `{md(env, 40)}`.",
                )
            )
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
