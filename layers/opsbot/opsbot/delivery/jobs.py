"""The worker's delivery job: a robot's digest flush, scheduled when a burst folded news into its digest."""

from __future__ import annotations

from opsbot.config import store
from opsbot.delivery import robot as budgeted
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, PermanentFailure
from opsbot.jobs.registry import handles


@handles(kinds.DIGEST_FLUSH)
def flush_robot_digest(job: Job) -> str:
    config = store.load()
    robot = config.robots.get(job.payload["robot"])
    if robot is None:
        raise PermanentFailure(f"robot {job.payload['robot']} is no longer configured; its digest is kept")
    if "entries" in job.payload:  # a digest that was in doubt, redriven from the DLQ
        return budgeted.send_parked(config, robot, job.payload["entries"], job.id)
    return budgeted.flush_digest(config, robot)
