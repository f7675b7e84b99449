"""The worker's side of ops follow-ups: the `ops.follow_up` job, queued with a delay after a change and after each
check that found it still running (a rollout, a VM batch, a DNS change)."""

from __future__ import annotations

from opsbot.config import store
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, PermanentFailure
from opsbot.jobs.registry import handles


@handles(kinds.OPS_FOLLOW_UP)
def follow_up(job: Job) -> str:
    payload = job.payload
    try:
        request_id, step, state = str(payload["request"]), int(payload["step"]), dict(payload["state"])
    except (KeyError, TypeError, ValueError):
        raise PermanentFailure("an ops follow-up without its request, step or state") from None
    from opsbot.ops import run  # late: the worker's cold start does not load the ops logic

    return run.follow_up(store.load(), request_id, step, state)
