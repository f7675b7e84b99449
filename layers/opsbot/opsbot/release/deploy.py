"""Deploying, rolling back and re-running builds, as the authorization core allows.

`release()` is the one entrance for chat commands, approvals and release links alike: it asks the core
(authz.core) whether this actor may put this build in this environment (roles, the environment's branch and
build events, approvals), then either releases it or opens an approval request bound to the exact build, commit
and target (or, for a revert, the exact deploy commit). How a release reaches an environment is the environment's
`deploy:` way: Drone's promote/rollback (the default, here), or a GitOps release (a commit in the deploy repo,
opsbot.promotion, which registers itself in WAYS). Every Drone start carries a request id and is looked up before it
is retried (drone/requests.py), so a timeout never deploys twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from opsbot import audit, metrics
from opsbot.authz import core as authz
from opsbot.authz.actors import Actor
from opsbot.channels import buttons
from opsbot.config.model import Config, Person, Project
from opsbot.drone import requests as drone_requests
from opsbot.drone.api import DroneClient, DroneRefused
from opsbot.drone.builds import build_branch, is_deployment
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.release import approvals
from opsbot.state import effects, keys
from opsbot.text import is_number

DEPLOY = authz.Verb("deploy", ("deployer",), authz.DEPLOY)
ROLLBACK = authz.Verb("rollback", ("deployer",), authz.DEPLOY)
RESTART = authz.Verb("restart", ("developer",), authz.RERUN)
VERBS = {"deploy": DEPLOY, "rollback": ROLLBACK, "revert": ROLLBACK}  # revert: a GitOps rollback, a revert commit


class ReleaseRefused(Exception):
    """The facts say no (no such build, nothing to roll back to); the message says why, in the person's language."""


@dataclass
class Ask:
    """Who asks, where their act is audited, and the id that makes the request one request across retries."""

    actor: Actor
    record: audit.AuditRecord
    language: str
    request_id: str  # the approval id, and the Drone build parameter that marks the start as this request's
    via: str = "chat"  # where it was asked: chat, link (a release link); a GitOps release's commit names it
    conversation: dict = field(default_factory=dict)  # where to answer a GitOps release's follow-ups


@dataclass(frozen=True)
class Requested:
    """Who asked for a release, and who approved it, as a deploy way needs them (a GitOps commit's author and
    trailers): from the chat or link request, or from an approved approval request."""

    id: str
    name: str
    person: Person | None
    approvers: tuple[str, ...]  # names
    via: str
    language: str
    request_id: str
    conversation: dict = field(default_factory=dict)
    revert: str = ""  # a revert: the deploy commit it undoes

    @classmethod
    def of(cls, ask: Ask, revert: str = "") -> Requested:
        actor = ask.actor
        return cls(
            actor.id, actor.name, actor.person, (), ask.via, ask.language, ask.request_id, ask.conversation, revert
        )


class Way(Protocol):
    """A way of deploying beside Drone's promote (opsbot.promotion's GitOps releases), registered in WAYS."""

    def execute(
        self, config: Config, project: Project, env: str, build: dict | None, action: str, who: Requested
    ) -> Reply:
        """Release now (deploy, rollback to `build`, or revert `who.revert`), once per `who.request_id`."""

    def opened(self, config: Config, project: Project, env: str, build: dict | None, request, who: Requested) -> str:
        """What to add to the approval request's message; a merge-request environment opens its merge request here."""


WAYS: dict[str, Way] = {}


def register_way(kind: str, way: Way) -> None:
    WAYS[kind] = way


def way_of(project: Project, env_name: str) -> Way | None:
    """The environment's way, or None for Drone's promote."""
    env = project.environments.get(env_name)
    if env is None or env.deploy is None:
        return None
    if "gitops" not in WAYS:  # a bug: the entry point did not import opsbot.promotion.way
        raise RuntimeError("GitOps environments need opsbot.promotion.way imported")
    return WAYS["gitops"]


def find_build(drone: DroneClient, project: Project, ref: str | int, language: str) -> dict:
    """A build by number, or the newest successful build of a branch that is no deployment itself."""
    if isinstance(ref, int) or is_number(str(ref)):
        try:
            return drone.build(project.repo, int(str(ref).lstrip("#")))
        except DroneRefused as exc:
            if exc.status == 404:
                raise ReleaseRefused(
                    t(language, f"{project.name} 没有构建 #{ref}。", f"{project.name} has no build #{ref}.")
                ) from None
            raise
    for build in drone.builds(project.repo, branch=str(ref), per_page=50):
        if build.get("status") == "success" and not is_deployment(build):
            return build
    raise ReleaseRefused(
        t(language, f"分支 {md(ref)} 最近没有成功的构建。", f"branch {md(ref)} has no recent successful build.")
    )


def release(
    config: Config,
    drone: DroneClient | None,
    ask: Ask,
    project: Project,
    env_name: str,
    build: dict | None,
    action: str,
    revert: str = "",
) -> Reply:
    """Deploy (or roll back to) `build` now, or open an approval request, as the core decides. A GitOps rollback
    may be a `revert` of a deploy commit instead, with the build it goes back to when one is known."""
    decision = authz.authorize(
        config,
        ask.actor,
        VERBS[action],
        authz.Target(project.name, env_name, authz.Build.of(build) if build else None),
        ask.record,
        {"build": (build or {}).get("number"), **({"revert": revert[:12]} if revert else {})},
        ask.language,
    )
    if decision.denied:
        metrics.count(metrics.DEPLOYS, Environment=env_name, Outcome="denied")
        raise authz.Denied(decision)
    if decision.outcome == authz.NEEDS_APPROVAL:
        metrics.count(metrics.DEPLOYS, Environment=env_name, Outcome="approval requested")
        build = build or {}
        opened = approvals.create(
            approvals.ApprovalRequest(
                id=ask.request_id,
                action=action,
                project=project.name,
                target=env_name,
                build=int(build.get("number") or 0),
                commit=revert or str(build.get("after") or ""),  # a revert is bound to the deploy commit it undoes
                branch=build_branch(build) if build else "",
                event=str(build.get("event") or ""),
                requester=ask.actor.id,
                requester_name=ask.actor.name,
                needed=decision.approvals,
                deadline=int(time.time()) + config.approval_hours * 3600,
                via=ask.via,
            )
        )
        reply = approval_opened(opened, ask.language)
        if (way := way_of(project, env_name)) is not None:
            reply.text += way.opened(config, project, env_name, build or None, opened, Requested.of(ask, revert))
        return reply
    if (way := way_of(project, env_name)) is not None:
        return way.execute(config, project, env_name, build, action, Requested.of(ask, revert))
    return execute(drone, project, env_name, int(build["number"]), action, ask.actor.name, ask.language, ask.request_id)


def approval_opened(request: approvals.ApprovalRequest, language: str) -> Reply:
    verb = t(language, "发布" if request.action == "deploy" else "回滚到", request.action)
    hours = max(1, round((request.deadline - time.time()) / 3600))
    branch, who = md(request.branch), md(request.requester_name)
    if request.action == "revert":  # what a revert is bound to: the deploy commit it undoes
        what = t(
            language,
            f"回滚（revert 部署提交 {request.commit[:8]}）",
            f"roll back (revert deploy commit {request.commit[:8]})",
        )
        verb, facts = (
            what,
            t(language, f"，回到 #{request.build}", f", back to #{request.build}") if request.build else "",
        )
        text_head = t(
            language,
            f"### 🔐 审批请求 `{request.id}`\n\n{who} 请求{verb} **{request.project}** 的 "
            f"**{request.target}**{facts}。\n\n",
            f"### 🔐 Approval request `{request.id}`\n\n{who} asks to {verb} **{request.project}** in "
            f"**{request.target}**{facts}.\n\n",
        )
    else:
        text_head = t(
            language,
            f"### 🔐 审批请求 `{request.id}`\n\n{who} 请求{verb} **{request.project}** "
            f"#{request.build}（{branch} · {request.commit[:8]}）到 **{request.target}**。\n\n",
            f"### 🔐 Approval request `{request.id}`\n\n{who} asks to {verb} **{request.project}** "
            f"#{request.build} ({branch} · {request.commit[:8]}) to **{request.target}**.\n\n",
        )
    text = text_head + t(
        language,
        f"需要 {request.needed} 位其他同事批准：`@opsbot approve {request.id}`，或拒绝：`@opsbot reject {request.id}`"
        f"（{hours} 小时内有效）",
        f"Needs {request.needed} approval(s) from someone else: `@opsbot approve {request.id}`, or "
        f"`@opsbot reject {request.id}` (valid for {hours} h)",
    )
    return Reply(
        title=t(language, f"审批请求 {request.id}", f"Approval request {request.id}"),
        text=text,
        project=request.project,
        detail=f"approval {request.id} opened for {request.target}",
        buttons=buttons.approval_buttons(request.id, language),
    )


def execute(
    drone: DroneClient,
    project: Project,
    target: str,
    number: int,
    action: str,
    by: str,
    language: str,
    request_id: str,
    approved_by: str = "",
) -> Reply:
    """The Drone call itself, once per request id. Drone saying no becomes a failed Reply with Drone's reason.
    Drone's build records who asked and who approved (`approved_by`); the reply names who asked, as the approval's
    own note already says who approved."""
    verb = t(language, "发布" if action == "deploy" else "回滚", "deploy" if action == "deploy" else "rollback")
    requested_by = f"{by} ✔ {approved_by}" if approved_by else by

    def start(params: dict) -> dict:
        if action == "deploy":
            return drone.promote(project.repo, number, target, {"OPSBOT_REQUESTED_BY": requested_by, **params})
        return drone.rollback(project.repo, number, target, {"OPSBOT_REQUESTED_BY": requested_by, **params})

    try:
        started = drone_requests.start_once(drone, project.repo, number, request_id, start)
    except DroneRefused as exc:
        metrics.count(metrics.DEPLOYS, Environment=target, Outcome="refused by Drone")
        return Reply(
            title=t(language, f"{verb}失败", f"{verb} failed"),
            ok=False,
            project=project.name,
            text=t(
                language,
                f"### ❌ {project.name} #{number} {verb}到 {target} 失败\n\nDrone：{md(exc.message)}",
                f"### ❌ {verb.capitalize()} of {project.name} #{number} to {target} failed\n\n"
                f"Drone: {md(exc.message)}",
            ),
            detail=f"Drone refused: {exc.message}",
        )
    metrics.count(metrics.DEPLOYS, Environment=target, Outcome="started")
    link = drone.ui_link(project.repo, started.get("number", number))
    return Reply(
        title=t(language, f"已开始{verb} {project.name}", f"{verb} of {project.name} started"),
        project=project.name,
        text=t(
            language,
            f"### 🚀 已开始{verb} {project.name} #{number} → {target}\n\n"
            f"Drone 构建 [#{started.get('number')}]({link})，发起人 {md(by)}。完成后会通知本群。",
            f"### 🚀 {verb.capitalize()} of {project.name} #{number} → {target} started\n\n"
            f"Drone build [#{started.get('number')}]({link}), by {md(by)}. The group hears when it finishes.",
        ),
        detail=f"{action} #{number} to {target}: Drone build #{started.get('number')}",
    )


def execute_approved(
    config: Config, drone: DroneClient | None, request: approvals.ApprovalRequest, language: str
) -> Reply:
    """The release of an approved request, once per request however many times it is asked for. The approval is
    bound to the build and its commit (a revert: to the deploy commit it undoes): if Drone's build no longer is
    that commit, or the environment's rules no longer take it, nothing is deployed."""
    project = config.projects.get(request.project)
    if project is None:
        raise ReleaseRefused(
            t(language, f"项目 {request.project} 已不在配置中。", f"project {request.project} is no longer configured.")
        )
    env = project.environments.get(request.target)
    if env is None:
        raise ReleaseRefused(
            t(
                language,
                f"项目 {project.name} 已没有环境 {request.target}。",
                f"project {project.name} no longer has the environment {request.target}.",
            )
        )
    way = way_of(project, request.target)
    approvers = tuple((config.person(a).name if config.person(a) else a) for a in request.approvers)
    requester = config.person(request.requester)
    who = Requested(
        request.requester,
        request.requester_name,
        requester,
        approvers,
        request.via or "chat",
        language,
        request.id,
        revert=request.commit if request.action == "revert" else "",
    )

    def run() -> dict:
        # Locks and freezes as they are now, for the requester: what was approved may be held since it was asked
        requester_actor = Actor(request.via or "chat", request.requester, request.requester_name, requester)
        holds = authz.load_holds(config, VERBS[request.action], authz.Target(project.name, request.target))
        if denied := authz.held(requester_actor, holds, language):
            raise authz.Denied(denied)
        if request.action == "revert":
            if way is None:
                raise ReleaseRefused(
                    t(language, f"{request.target} 不是 GitOps 环境。", f"{request.target} is no GitOps environment.")
                )
            build = find_build(drone, project, request.build, language) if request.build and drone else None
            if build is not None and (denied := authz.deployable(project, env, authz.Build.of(build), language)):
                raise authz.Denied(denied)
            return way.execute(config, project, request.target, build, "revert", who).as_dict()
        build = find_build(drone, project, request.build, language)
        if str(build.get("after") or "") != request.commit:
            raise ReleaseRefused(
                t(
                    language,
                    f"#{request.build} 已不是审批时的提交 {request.commit[:8]}，不会发布。",
                    f"#{request.build} is no longer commit {request.commit[:8]}, which was approved; "
                    "nothing was deployed.",
                )
            )
        if denied := authz.deployable(project, env, authz.Build.of(build), language):
            raise authz.Denied(denied)
        if way is not None:
            return way.execute(config, project, request.target, build, request.action, who).as_dict()
        return execute(
            drone,
            project,
            request.target,
            request.build,
            request.action,
            request.requester_name,
            language,
            request.id,
            approved_by=", ".join(request.approvers),
        ).as_dict()

    return Reply.from_dict(effects.once(keys.APPROVED + request.id, run, permanent=True))  # an approval acts once, ever


def previous_deploy(drone: DroneClient, project: Project, target: str, language: str) -> int:
    """The build that the environment ran before its current deployment."""
    deploys = [
        b
        for b in drone.builds(project.repo, per_page=100)
        if is_deployment(b) and b.get("deploy_to") == target and b.get("status") == "success"
    ]
    deploys.sort(key=lambda b: int(b.get("number") or 0), reverse=True)
    origins = [int(b.get("parent") or b["number"]) for b in deploys]
    # The first origin that differs from what runs now: redeploying the same build is not a version to go back to.
    earlier = next((origin for origin in origins[1:] if origins and origin != origins[0]), None)
    if earlier is None:
        raise ReleaseRefused(
            t(
                language,
                f"{target} 没有更早的成功发布可以回滚。",
                f"{target} has no earlier successful deployment to roll back to.",
            )
        )
    return earlier


def rollback_origin(drone: DroneClient, project: Project, number: int, language: str) -> dict:
    """The build a rollback to `number` deploys: a deployment's own origin, since Drone rolls back to a build."""
    build = find_build(drone, project, number, language)
    if is_deployment(build) and build.get("parent"):
        build = find_build(drone, project, int(build["parent"]), language)
    return build


def restart(
    config: Config, drone: DroneClient, ask: Ask, project: Project, build: dict, verb: authz.Verb = RESTART
) -> dict:
    """Run `build` again, as the core allows (never a deployment); the started build."""
    decision = authz.authorize(
        config,
        ask.actor,
        verb,
        # a deployment's re-run would deploy again: the environment it went to is held by its locks and freezes
        authz.Target(
            project.name, str(build.get("deploy_to") or "") if is_deployment(build) else "", authz.Build.of(build)
        ),
        ask.record,
        {"build": build.get("number")},
        ask.language,
    )
    if decision.denied:
        raise authz.Denied(decision)
    number = int(build["number"])
    return drone_requests.start_once(
        drone, project.repo, number, ask.request_id, lambda params: drone.restart(project.repo, number, params)
    )
