"""The worker's side of release governance: `governance.tick`, put on the work queue by template.yaml's
GovernanceSchedule every 15 minutes (locally: the stack's scheduler, or `make governance-tick AT=…`). Each tick
announces the freezes opening within the hour and sends the weekly reports due this hour; both are once per robot
whatever the ticks, so a tick retried or repeated in the same hour sends nothing twice.

The tick's moment is the schedule's own (`payload.at`, the EventBridge event's time), so a late or retried tick
acts for the moment it was meant for."""

from __future__ import annotations

import time
from datetime import datetime

from opsbot.config import store
from opsbot.jobs import kinds
from opsbot.jobs.model import Job
from opsbot.jobs.registry import handles


def moment(payload: dict) -> float:
    at = str(payload.get("at") or "")
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


@handles(kinds.GOVERNANCE_TICK)
def tick(job: Job) -> str:
    from opsbot.governance import announce, report  # late: the report's reads, for this job only

    config, now = store.load(), moment(job.payload)
    told = announce.announce_due(config, now)
    sent = report.send_due(config, now)
    return f"governance tick: {len(told)} freeze announcement(s), {len(sent)} weekly report(s)"
