"""status / 状态 and builds / 构建: what Drone says about a project, with links."""

from __future__ import annotations

import time

from opsbot.chat.commands.releases import ago_seconds, gitops_status, has_gitops
from opsbot.chat.context import ChatRequest
from opsbot.chat.registry import Argument, UsageError, command
from opsbot.drone.api import DroneRefused
from opsbot.drone.builds import build_branch, commit_title, is_deployment, status_word
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.notify.render import ICON
from opsbot.text import is_number

MAX_BRANCHES = 8


_ago = ago_seconds  # how long ago, in the reader's language (chat/commands/releases.py)


def build_line(request: ChatRequest, slug: str, build: dict, with_branch: bool = True) -> str:
    status = build.get("status", "?")
    icon = ICON.get(status, "🔄" if status in ("pending", "running") else "ℹ️")
    when = build.get("finished") or build.get("started") or build.get("created") or time.time()
    link = request.drone().ui_link(slug, build.get("number"))
    where = md(build_branch(build), 80)
    if is_deployment(build):
        event = t(request.language, "发布" if build.get("event") == "promote" else "回滚", str(build.get("event")))
        where = f"{event} → {md(build.get('deploy_to'), 40)}"
    parts = [
        f"{icon} [#{build.get('number')}]({link})",
        where if with_branch else "",
        md(status_word(status, request.language), 40),
        md(commit_title(build)),
        md(build.get("author_login") or "", 40),
        _ago(time.time() - float(when), request.language),
    ]
    return "- " + " · ".join(p for p in parts if p)


@command(
    "status",
    area="release",
    aliases=("状态",),
    needs_drone=True,
    in_worker=has_gitops,
    arguments=(Argument("project"), Argument("branch", required=False)),
    zh="每个分支最新的构建、各环境最近的发布；GitOps 环境：部署仓库里的期望状态与实际运行，漂移会标出",
    en="The latest build of each branch and the latest deployments; for GitOps environments, the desired state "
    "(the deploy repo: image, build, commit, who, when, approvers) and what runs, with drift marked",
    examples=("status shop-api", "状态 shop-api main"),
)
def status(request: ChatRequest) -> Reply:
    project = request.project()
    drone = request.drone()
    branch = str(request.arguments.get("branch") or "")
    if branch:
        try:
            builds = [drone.latest(project.repo, branch)]
        except DroneRefused as exc:
            if exc.status != 404:
                raise
            builds = []
    else:
        latest: dict[str, dict] = {}
        for build in drone.builds(project.repo, per_page=50):
            key = (
                f"{build.get('event')}:{build.get('deploy_to')}"
                if build.get("event") in ("promote", "rollback")
                else build_branch(build)
            )
            latest.setdefault(key, build)
        builds = list(latest.values())[:MAX_BRANCHES]
    gitops = request.in_worker and any(env.deploy for env in project.environments.values())
    from opsbot.chat.commands.governance import status_lines  # the locks and freezes that hold it now

    held = status_lines(request, project)
    if not builds and not gitops and not held:
        return Reply(
            title=request.t(f"{project.name} 状态", f"status {project.name}"),
            project=project.name,
            text=request.t(
                f"{project.name} {md(branch, 80)} 还没有构建。".replace("  ", " "),
                f"{project.name} {md(branch, 80)} has no builds yet.".replace("  ", " "),
            ),
        )
    head = request.t(f"### {project.name} 的最新状态", f"### {project.name}: latest builds")
    lines = [build_line(request, project.repo, b) for b in builds]
    if gitops:
        lines += [""] + gitops_status(request, project)
    lines += held
    return Reply(
        title=request.t(f"{project.name} 状态", f"status {project.name}"),
        project=project.name,
        text="\n".join([head, ""] + lines),
    )


def _parse_builds(words: list[str]) -> dict:
    if not words:
        raise UsageError("missing <project>")
    if len(words) > 3:
        raise UsageError(f"too many arguments: {md(' '.join(words[3:]), 80)}")
    found: dict = {"project": words[0]}
    for word in words[1:]:
        if is_number(word) and "n" not in found:
            found["n"] = int(word.lstrip("#"))
        elif "branch" not in found:
            found["branch"] = word
        else:
            raise UsageError(f"unexpected '{md(word, 40)}'")
    return found


@command(
    "builds",
    area="release",
    aliases=("构建", "构建列表"),
    needs_drone=True,
    parse=_parse_builds,
    arguments=(Argument("project"), Argument("branch", required=False), Argument("n", required=False, number=True)),
    zh="最近的构建（默认 10 个）",
    en="Recent builds (10 unless you say n)",
    examples=("builds shop-api", "builds shop-api main 5", "构建 shop-api 20"),
)
def builds(request: ChatRequest) -> Reply:
    project = request.project()
    n = max(1, min(int(request.arguments.get("n") or 10), 30))
    branch = str(request.arguments.get("branch") or "")
    found = request.drone().builds(project.repo, branch=branch, per_page=n)[:n]
    title = request.t(f"{project.name} 构建", f"builds {project.name}") + (f" {md(branch, 60)}" if branch else "")
    if not found:
        return Reply(title=title, project=project.name, text=request.t("没有找到构建。", "No builds found."))
    head = request.t(f"### {project.name} 最近 {len(found)} 个构建", f"### {project.name}: last {len(found)} builds")
    lines = [build_line(request, project.repo, b, with_branch=not branch) for b in found]
    return Reply(
        title=title,
        project=project.name,
        text="\n".join([head + (f" ({md(branch, 80)})" if branch else ""), ""] + lines),
    )
