"""The worker's side of GitOps releases: `release.step` (a delayed look at a running step, or the next steps after
it) and `release.drift_check` (the scheduled comparison of desired and live state, from template.yaml's schedule)."""

from __future__ import annotations

from opsbot.config import store
from opsbot.jobs import kinds
from opsbot.jobs.model import Job, PermanentFailure
from opsbot.jobs.registry import handles


@handles(kinds.RELEASE_STEP)
def release_step(job: Job) -> str:
    payload = job.payload
    try:
        release_id, index, poll = str(payload["release"]), int(payload["index"]), int(payload["poll"])
    except (KeyError, TypeError, ValueError):
        raise PermanentFailure("a release step without its release, index or poll") from None
    from opsbot.promotion import runner, way  # noqa: F401  (way: registers the steps; late: off the cold start)

    return runner.advance(store.load(), release_id, index, poll)


@handles(kinds.RELEASE_DRIFT_CHECK)
def drift_check(job: Job) -> str:
    from opsbot.promotion import drift  # late: the deploy repo's and clusters' clients, for this job only

    return drift.check(store.load(), job.id)
