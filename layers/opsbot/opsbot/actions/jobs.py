"""The worker's side of a release link: the same rules and Drone calls as `deploy` in chat, posted to the
project's group and written to the audit log. The link carries no identity, so the build's author (from
the git mapping) stands as the requester: production still needs someone else to approve."""
from __future__ import annotations

from opsbot.actions.handler import JOB_KIND
from opsbot.actions.tokens import ReleaseGrant
from opsbot.authz.actors import gitlab_user
from opsbot.authz.core import Denied
from opsbot import audit
from opsbot.chat.context import Reply
from opsbot.chat.jobs import run_and_report
from opsbot.config import store
from opsbot.drone.api import DroneNotConfigured, DroneRefused, client_for
from opsbot.jobs.model import Job
from opsbot.jobs.registry import handles
from opsbot.release import deploy as release


def _release(grant: ReleaseGrant, ask: release.Ask) -> Reply:
    config = store.load()
    project = config.projects.get(grant.project)
    if project is None:
        raise release.ReleaseRefused(f"project {grant.project} is no longer configured")
    drone = client_for(config)
    build = release.find_build(drone, project, grant.build, ask.language)
    if (build.get("after") or "") != grant.commit:
        raise release.ReleaseRefused(f"#{grant.build} is no longer commit {grant.commit[:8]}")
    return release.release(config, drone, ask, project, grant.target, build, "deploy")


@handles(JOB_KIND)
def run_release_link(job: Job) -> str:
    config = store.load()
    grant = ReleaseGrant(**job.payload["grant"])
    project = config.projects.get(grant.project)
    language = project.language if project else config.language
    actor = gitlab_user(config, grant.author)
    requester, requester_name = actor.id, actor.name
    record = audit.AuditRecord(
        id=job.id, at_ms=int(job.payload["clicked_at"]) * 1000, who=requester, who_name=requester_name,
        where="web", where_title=job.payload.get("source_ip", ""), command="deploy",
        arguments={"project": grant.project, "build": str(grant.build), "env": grant.target}, project=grant.project)

    def attempt() -> Reply:
        try:
            return _release(grant, release.Ask(actor, record, language, job.id[-8:]))
        except (release.ReleaseRefused, Denied, DroneRefused, DroneNotConfigured) as exc:
            return Reply(title="release refused", ok=False, project=grant.project, detail=str(exc)[:200],
                         text=f"### ⛔ {grant.project} #{grant.build} → {grant.target}\n\n{exc}")

    def gave_up(reason: str) -> Reply:
        return Reply(title="release failed", ok=False, project=grant.project, detail=reason,
                     text=f"### ❌ {grant.project} #{grant.build} → {grant.target}\n\n{reason}")

    return run_and_report(job, config, record, attempt, gave_up)
