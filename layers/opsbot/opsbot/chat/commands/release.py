"""deploy / 部署, rollback / 回滚 and restart / 重试: the commands that change what runs. They act, so the
worker runs them through the queue and posts the outcome; environments with approvals open a request."""
from __future__ import annotations

from opsbot.chat.context import ChatRequest, Reply
from opsbot.chat.registry import Argument, command
from opsbot.drone.api import DroneRefused
from opsbot.release import deploy as release

FILLERS = ("to", "到", "至", "into")


def _request_id(request: ChatRequest) -> str:
    return request.job_id[:8]


@command("deploy", aliases=("部署", "发布"), acts=True, role="deployer", needs_drone=True, fillers=FILLERS,
         environment_argument="env", usage="deploy <project> <build|branch> [to] <env>",
         arguments=(Argument("project"), Argument("build|branch"), Argument("env")),
         zh="把一个成功的构建发布到环境（Drone promote）；需要审批的环境会先发起审批",
         en="Deploy a successful build to an environment (Drone promote); environments with approvals open a request",
         examples=("deploy shop-api 128 to staging", "部署 shop-api 128 到 staging", "deploy shop-api main production"))
def deploy(request: ChatRequest) -> Reply:
    project = request.project()
    env = release.environment(project, str(request.arguments["env"]), request.language)
    drone = request.drone()
    build = release.find_build(drone, project, request.arguments["build|branch"], request.language)
    release.check_deployable(project, env, build, request.language)
    return release.request(request.config, drone, project, env, build, "deploy", request.sender_id, request.sender,
                           request.language, _request_id(request))


@command("rollback", aliases=("回滚",), acts=True, role="deployer", needs_drone=True, environment_argument="env",
         arguments=(Argument("project"), Argument("env"), Argument("build", required=False, number=True)),
         zh="把环境回滚到上一次成功的发布，或指定的构建", en="Roll an environment back to its previous successful "
                                                "deployment, or to the given build",
         examples=("rollback shop-api staging", "回滚 shop-api production 120"))
def rollback(request: ChatRequest) -> Reply:
    project = request.project()
    env = release.environment(project, str(request.arguments["env"]), request.language)
    drone = request.drone()
    number = request.arguments.get("build")
    if number is None:
        number = release.previous_deploy(drone, project, env.name, request.language)
    build = release.find_build(drone, project, int(number), request.language)
    if build.get("event") in release.DEPLOYMENTS and build.get("parent"):
        build = release.find_build(drone, project, int(build["parent"]), request.language)
    if build.get("status") != "success":
        raise release.ReleaseRefused(request.t(f"#{build.get('number')} 不是成功的构建，不能回滚到它。",
                                               f"#{build.get('number')} did not succeed; cannot roll back to it."))
    return release.request(request.config, drone, project, env, build, "rollback", request.sender_id, request.sender,
                           request.language, _request_id(request))


@command("restart", aliases=("重试", "重新构建"), acts=True, role="developer", needs_drone=True,
         arguments=(Argument("project"), Argument("build", number=True)),
         zh="重新运行一个构建（Drone restart）", en="Run a build again (Drone restart)",
         examples=("restart shop-api 127", "重试 shop-api 127"))
def restart(request: ChatRequest) -> Reply:
    project = request.project()
    drone = request.drone()
    number = int(request.arguments["build"])
    try:
        started = drone.restart(project.repo, number)
    except DroneRefused as exc:
        return Reply(title="restart failed", ok=False, project=project.name, detail=f"Drone refused: {exc.message}",
                     text=request.t(f"### ❌ 重试 {project.name} #{number} 失败\n\nDrone：{exc.message}",
                                    f"### ❌ Restart of {project.name} #{number} failed\n\nDrone: {exc.message}"))
    link = drone.ui_link(project.repo, started.get("number"))
    return Reply(title=f"restart {project.name}", project=project.name,
                 detail=f"restarted #{number} as #{started.get('number')}",
                 text=request.t(f"### 🔄 已重新运行 {project.name} #{number}：[#{started.get('number')}]({link})",
                                f"### 🔄 Restarted {project.name} #{number} as [#{started.get('number')}]({link})"))
