"""The worker's notification job: a finished Drone build, told to each of the project's robots once."""

from __future__ import annotations

from opsbot.config import store
from opsbot.delivery.post import to_robots
from opsbot.drone import events
from opsbot.drone.builds import build_branch, is_deployment
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, PermanentFailure, read_payload
from opsbot.jobs.registry import handles
from opsbot.log import logger
from opsbot.message import Message
from opsbot.notify import policy, render, scan
from opsbot.release import links
from opsbot.state import branch_status, keys


@handles(kinds.DRONE_BUILD_FINISHED)
def notify_build_finished(job: Job) -> str:
    finished = read_payload(events.finished_build, job.payload, "Drone build")
    if finished is None:
        raise PermanentFailure("bug: a Drone build job for a build that is not finished")
    (repo, build), system = finished, job.payload.get("system") or {}
    config = store.load()
    project = config.project_for_repo(repo["slug"])
    if project is None:
        return f"no project is configured for {repo['slug']}"
    previous = None
    if not is_deployment(build):
        previous = branch_status.record_finish(repo["slug"], build_branch(build), build["number"], build["status"])
    reason = policy.reason_to_notify(project.notify, build, previous)
    if reason is None:
        return "quiet: the project's notify policy skips this build"
    ran = []

    def card() -> Message:
        ran.append(True)
        author = config.person_for_git(build.get("author_login", ""), build.get("author_email", ""))
        buttons = links.buttons(config, project, build) if reason in ("success", "fixed") else []
        image_scan = scan.scan_result(config, repo["slug"], build) if reason not in ("promote", "rollback") else None
        deployer = render.deployer_name(build, config.person_for_git(build.get("sender", "")), project.language)
        return render.build_message(project, repo, build, system, reason, author, buttons, image_scan, deployer)

    # Once per delivery and robot, however often SQS hands the job over, and even when two copies run at the same
    # time; the card is built only while some robot still needs it.
    told = to_robots(config, card, project.robots, job.id, keys.NOTIFIED + job.id)
    outcome = next(iter(told.values())) if len(told) == 1 else ", ".join(f"{r}: {o}" for r, o in told.items())
    if not ran:
        return "already notified"  # SQS delivered this job twice
    logger.info(
        "build notification",
        extra={
            "project": project.name,
            "build": build["number"],
            "reason": reason,
            "robot": ", ".join(project.robots),
            "outcome": outcome,
        },
    )
    return outcome
