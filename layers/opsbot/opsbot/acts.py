"""Running an act in the worker: once, its result posted, its audit record finished.

"Once" holds across SQS redeliveries (state.effects keeps the result), for the act and for posting its result. A
peer being unavailable is retried through the queue; after REPORT_AFTER_ATTEMPTS the person is told it failed and
the job goes to the DLQ, so the outcome is always reported and never silently lost. Waiting for another attempt's
lease on the act (a worker that stopped mid-act) is not a failure: it waits up to the queue's last receive. Chat
commands (chat/jobs.py) and release links (actions/jobs.py) run their acts through here.
"""

from __future__ import annotations

from collections.abc import Callable

from opsbot import audit
from opsbot.authz import core as authz
from opsbot.config.model import Config
from opsbot.delivery.post import post
from opsbot.jobs import deadline
from opsbot.jobs.model import MAX_RECEIVES, Job, PermanentFailure, RetryLater
from opsbot.log import logger
from opsbot.message import Conversation, Reply
from opsbot.state import effects

REPORT_AFTER_ATTEMPTS = 3


def run_and_report(
    job: Job,
    config: Config,
    record: audit.AuditRecord,
    effect: Callable[[], Reply],
    gave_up: Callable[[str], Reply],
    conversation: Conversation | None = None,
) -> str:
    """Run `effect` once for this job, post its Reply (into `conversation` while it is still open) and audit it.
    Retries while the peer is unavailable; after REPORT_AFTER_ATTEMPTS reports `gave_up`."""

    def effect_and_decision() -> dict:
        # The core's decision is written into `record` while the effect runs; kept with the result, so that a
        # retry that only re-posts still audits it.
        result = effect().as_dict()
        return {**result, "audit": {k: getattr(record, k) for k in ("via", "target", "decision", "reason")}}

    try:
        stored = effects.once(job.id, effect_and_decision)
        for key, value in (stored.get("audit") or {}).items():
            setattr(record, key, value)
        reply = Reply.from_dict(stored)
    except (PermanentFailure, deadline.OutOfTime):
        raise  # parked as it is, or continued in a job of its own: neither is a failure to report
    except Exception as exc:  # a peer that stays down, or a bug: either way the person hears of it in the end
        if job.attempt < (MAX_RECEIVES if isinstance(exc, effects.EffectBusy) else REPORT_AFTER_ATTEMPTS):
            raise
        reason = exc.reason if isinstance(exc, RetryLater) else f"internal error ({type(exc).__name__})"
        reply = gave_up(reason)
        post(config, reply, conversation, f"{job.id}#gave-up")
        audit.finish(record, "failed", reason)
        logger.exception("command gave up", extra={"command": record.command, "attempts": job.attempt})
        raise PermanentFailure(f"{record.command} gave up after {job.attempt} attempts: {reason}") from None
    reply.project = reply.project or record.project
    # Once: a job redelivered after it posted (its worker stopped before SQS heard) does not post again.
    where = post(config, reply, conversation, job.id)
    result = "denied" if record.decision == authz.DENY else "succeeded" if reply.ok else "failed"
    audit.finish(record, result, reply.detail or reply.title)
    logger.info("command done", extra={"command": record.command, "ok": reply.ok, "posted_to": where})
    return where
