"""The worker's side of a release link: the person DingTalk's login named is the requester, and the same core,
rules and Drone calls as `deploy` in chat decide and act. The result (a deploy, an approval request in the
clicker's name, or a refusal with the reason) goes to the project's group and the audit log."""

from __future__ import annotations

from opsbot import audit
from opsbot.acts import run_and_report
from opsbot.authz.actors import Actor, release_clicker
from opsbot.authz.core import Denied
from opsbot.config import store
from opsbot.drone.api import DroneNotConfigured, DroneRefused, client_for
from opsbot.i18n import t
from opsbot.jobs import kinds
from opsbot.jobs.model import Job
from opsbot.jobs.registry import handles
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.release import deploy as release
from opsbot.release.links import ReleaseGrant


def _release(grant: ReleaseGrant, ask: release.Ask) -> Reply:
    from opsbot.promotion import way  # noqa: F401  (late: the GitOps way, for environments that release by Git)

    config = store.load()
    project = config.projects.get(grant.project)
    if project is None:
        raise release.ReleaseRefused(
            t(ask.language, f"项目 {grant.project} 已不在配置中。", f"project {grant.project} is no longer configured.")
        )
    drone = client_for(config)
    build = release.find_build(drone, project, grant.build, ask.language)
    if (build.get("after") or "") != grant.commit:
        raise release.ReleaseRefused(
            t(
                ask.language,
                f"#{grant.build} 已不是链接所指的提交 {grant.commit[:8]}，不会发布。",
                f"#{grant.build} is no longer commit {grant.commit[:8]}; nothing was deployed.",
            )
        )
    return release.release(config, drone, ask, project, grant.target, build, "deploy")


def _refused(grant: ReleaseGrant, actor: Actor, language: str, reason: str) -> Reply:
    who = md(actor.name)
    return Reply(
        title=t(language, "发布链接被拒绝", "release link refused"),
        ok=False,
        project=grant.project,
        detail=reason[:200],
        text=t(
            language,
            f"### ⛔ {grant.project} #{grant.build} → {grant.target}\n\n{who} 通过发布链接发起，未执行：{reason}",
            f"### ⛔ {grant.project} #{grant.build} → {grant.target}\n\n{who} clicked the release link; "
            f"nothing was done: {reason}",
        ),
    )


@handles(kinds.RELEASE_LINK)
def run_release_link(job: Job) -> str:
    config = store.load()
    grant = ReleaseGrant(**job.payload["grant"])
    clicker = job.payload["actor"]
    actor = release_clicker(config, clicker.get("via") or "", clicker["handle"], clicker.get("name") or "")
    project = config.projects.get(grant.project)
    language = project.language if project else config.language
    record = audit.AuditRecord(
        id=job.id,
        at_ms=int(job.payload["clicked_at"]) * 1000,
        who=actor.id,
        who_name=actor.name,
        where="web",
        where_title=job.payload.get("source_ip", ""),
        command="deploy",
        arguments={"project": grant.project, "build": str(grant.build), "env": grant.target},
        project=grant.project,
    )

    def attempt() -> Reply:
        try:
            return _release(grant, release.Ask(actor, record, language, job.id[-8:], "link"))
        except DroneRefused as exc:
            return _refused(grant, actor, language, f"Drone: {md(exc.message)}")  # Drone's words are data
        except (release.ReleaseRefused, Denied, DroneNotConfigured) as exc:
            return _refused(grant, actor, language, str(exc))

    def gave_up(reason: str) -> Reply:
        return Reply(
            title=t(language, "发布失败", "release failed"),
            ok=False,
            project=grant.project,
            detail=reason,
            text=f"### ❌ {grant.project} #{grant.build} → {grant.target}\n\n{md(actor.name)}: {reason}",
        )

    return run_and_report(job, config, record, attempt, gave_up)
