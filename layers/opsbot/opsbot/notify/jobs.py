"""The worker's notification jobs: a finished Drone build, and a robot's digest flush."""
from __future__ import annotations

import fnmatch

from opsbot.actions import tokens
from opsbot.config import store
from opsbot.config.model import Config, Project
from opsbot.log import logger
from opsbot.jobs.model import Job, PermanentFailure
from opsbot.jobs.registry import handles
from opsbot.notify import delivery, policy, render, scan
from opsbot.secrets import SecretError
from opsbot.settings import settings
from opsbot.state import branch_status, idempotency

DEPLOYABLE_EVENTS = ("push", "tag", "custom")  # not pull requests, and not deployments themselves


@handles("drone.build_finished")
def notify_build_finished(job: Job) -> str:
    config = store.load()
    repo, build, system = job.payload["repo"], job.payload["build"], job.payload.get("system") or {}
    project = config.project_for_repo(repo["slug"])
    if project is None:
        return f"no project is configured for {repo['slug']}"
    previous = None
    if build.get("event") not in ("promote", "rollback"):
        previous = branch_status.record_finish(repo["slug"], policy.build_branch(build), build["number"],
                                               build["status"])
    reason = policy.reason_to_notify(project.notify, build, previous)
    if reason is None:
        return "quiet: the project's notify policy skips this build"
    done_key = f"notified#{job.id}"
    if idempotency.seen(done_key):
        return "already notified"  # SQS delivered this job twice
    robot = config.robots.get(project.robot)
    if robot is None:
        raise PermanentFailure(f"project {project.name} names robot {project.robot}, which is not configured")
    author = config.person_for_git(build.get("author_login", ""), build.get("author_email", ""))
    links = release_links(config, project, build, reason)
    image_scan = scan.scan_result(config, repo["slug"], build) if reason not in ("promote", "rollback") else None
    rendered = render.build_message(project, repo, build, system, reason, author, links, image_scan)
    entry = {"id": job.id, "line": rendered.digest_line, "mobiles": rendered.mentions.mobiles,
             "user_ids": rendered.mentions.user_ids}
    outcome = delivery.deliver(robot, rendered.message, entry)
    idempotency.claim(done_key)
    logger.info("build notification", extra={"project": project.name, "build": build["number"], "reason": reason,
                                              "robot": robot.name, "outcome": outcome})
    return outcome


def release_links(config: Config, project: Project, build: dict, reason: str) -> list[tuple[str, str]]:
    """A release link per environment that takes this successful build's branch: a short signed token naming a
    grant stored in the state table. Whoever clicks signs in with DingTalk; the link itself identifies nobody."""
    base = settings().public_base_url
    if reason not in ("success", "fixed") or build.get("event") not in DEPLOYABLE_EVENTS or not base:
        return []
    branch = policy.build_branch(build)
    links = []
    for env in project.environments.values():
        if fnmatch.fnmatchcase(branch, env.branch):
            try:
                token = tokens.issue(project.name, build["number"], env.name, build.get("after") or "", branch,
                                     render.commit_title(build), str(build.get("event") or ""),
                                     config.action_link_hours)
            except SecretError:
                # No signing key yet: the news matters more than the button, so send it without one.
                logger.warning("release links are off: the signing key cannot be read",
                               extra={"parameter": settings().action_signing_key_param})
                return []
            links.append((env.name, f"{base}/actions/{token}"))
    return links


@handles(delivery.FLUSH_JOB)
def flush_robot_digest(job: Job) -> str:
    config = store.load()
    robot = config.robots.get(job.payload["robot"])
    if robot is None:
        raise PermanentFailure(f"robot {job.payload['robot']} is no longer configured; its digest is kept")
    return delivery.flush_digest(robot, config.language)
