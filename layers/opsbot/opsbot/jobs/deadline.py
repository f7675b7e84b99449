"""Each job's time budget inside the worker's batch (Lambda's `get_remaining_time_in_millis`).

The worker has one timeout for a batch of jobs, and some jobs make as many calls as their input asks for (an OWNERS
file per directory, a read per config file, pages). A Lambda timeout would fail the whole batch, finished jobs
included. So the worker starts a job only while one peer call and the reserve still fit, and gives the job a
deadline; every peer client calls `check()` before it calls out, and a job that cannot fit its next call stops
there (OutOfTime, raised before the call: nothing half done) and is queued again to go on, its finished effects
kept (state.effects) and what it read remembered (state.reads).
"""

from __future__ import annotations

import time
from contextvars import ContextVar

from opsbot.jobs.model import RetryLater
from opsbot.settings import settings

# What follows a job's last peer call: its results and audit record written, a continuation queued, the batch's
# answer to Lambda. DynamoDB and SQS calls are short but may retry once (opsbot.aws).
RESERVE_SECONDS = 12.0

_deadline: ContextVar[float | None] = ContextVar("job_deadline", default=None)


class OutOfTime(RetryLater):
    """Not enough of the batch's time is left for the job's next call; it was not made."""

    def __init__(self, what: str):
        super().__init__(f"out of time before {what}", delay=0)


def call_seconds() -> float:
    """The longest one peer call may take."""
    return settings().http_timeout_seconds


def may_start(remaining_ms: int) -> bool:
    """Whether a job may start with this much of the batch's time left: its first call and the reserve fit."""
    return remaining_ms / 1000 >= RESERVE_SECONDS + call_seconds()


def start(remaining_ms: int):
    """The job's deadline, for the job about to run; `finish(token)` ends it."""
    return _deadline.set(time.monotonic() + remaining_ms / 1000 - RESERVE_SECONDS)


def finish(token) -> None:
    _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the running job's budget; None outside a job (a CLI, ingress)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def check(what: str) -> None:
    """Before a peer call: OutOfTime when the job's budget cannot fit one more call."""
    left = remaining()
    if left is not None and left < call_seconds():
        raise OutOfTime(what)
