"""Jobs that ingress already accepts but whose features have not landed yet (tag pushes). They
are acknowledged and logged, so the queue and its DLQ alarm stay meaningful; the README lists these features
as missing."""

from __future__ import annotations

from opsbot.jobs import kinds
from opsbot.jobs.model import Job
from opsbot.jobs.registry import handles
from opsbot.log import logger

NOT_YET_HANDLED = (kinds.GITLAB_TAG_PUSH,)


def _acknowledge(job: Job) -> str:
    logger.info("accepted; no feature acts on this job kind yet")
    return "acknowledged"


for _kind in NOT_YET_HANDLED:
    handles(_kind)(_acknowledge)
