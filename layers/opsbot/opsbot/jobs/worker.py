"""Running one queued job: dispatch by kind, retry with backoff, park what cannot succeed in the DLQ.

A retry is the same SQS message made visible again after a delay (ChangeMessageVisibility). SQS counts the
receives, and its redrive policy moves the message to the DLQ after maxReceiveCount: nothing is dropped.

The batch shares one Lambda timeout: a job starts only while its first call and the reserve fit (jobs.deadline),
otherwise it is reported failed, made visible again at once, and left for the next batch; a job that runs out of
its budget mid-way stops before its next call and is queued again as a continuation.
"""

from __future__ import annotations

import dataclasses
import random

from opsbot import metrics
from opsbot.aws import client
from opsbot.jobs import deadline
from opsbot.jobs.model import Job, PermanentFailure, RetryLater, current_job
from opsbot.jobs.queue import enqueue, park_in_dead_letter_queue
from opsbot.jobs.registry import ON_OUT_OF_TIME, handler_for
from opsbot.log import logger
from opsbot.settings import settings

# A job that needs more than this many runs of a batch's time is parked: it would never end.
MAX_CONTINUATIONS = 10


class NotStarted(Exception):
    """Too little of the batch's time was left to start this job; it was made visible again for the next batch."""


def backoff_seconds(receive_count: int) -> int:
    s = settings()
    delay = min(s.retry_base_seconds * 2 ** max(0, receive_count - 1), s.retry_max_seconds)
    # Jitter spreads retries out, but never past RETRY_MAX_SECONDS, "the largest retry delay".
    return int(min(delay + random.uniform(0, delay * 0.1), s.retry_max_seconds))


def _retry_later(receipt_handle: str, seconds: int) -> None:
    client("sqs").change_message_visibility(
        QueueUrl=settings().work_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=min(max(0, seconds), 43_200)
    )


def _park(job: Job, body: str, reason: str) -> None:
    logger.error("job failed for good; parked in the DLQ", extra={"reason": reason})
    park_in_dead_letter_queue(body, job.kind, reason)


def _continue(job: Job, reason: str) -> str:
    """Queue the job again to go on where it stopped; this run is done."""
    if job.continued >= MAX_CONTINUATIONS:
        raise PermanentFailure(f"{reason}, {job.continued + 1} runs in a row: the job needs more time than it gets")
    for keep in ON_OUT_OF_TIME:
        keep(job)
    enqueue(dataclasses.replace(job, continued=job.continued + 1))
    logger.info("job ran out of time; queued to go on", extra={"reason": reason, "continued": job.continued + 1})
    return "continued"


def run_record(body: str, receipt_handle: str, receive_count: int, remaining_ms: int | None = None) -> None:
    """Run one SQS record. Raising marks it failed (the batch reports it); returning acknowledges it.
    `remaining_ms`: the batch's time left (Lambda's context), None when there is no limit."""
    if remaining_ms is not None and not deadline.may_start(remaining_ms):
        _retry_later(receipt_handle, 0)  # for the next batch, not after the whole visibility timeout
        raise NotStarted(f"{remaining_ms} ms left in the batch")
    try:
        job = Job.from_json(body)
    except (ValueError, TypeError, KeyError) as exc:
        logger.error("unreadable job; parked in the DLQ", extra={"reason": f"not a job: {exc}"})
        park_in_dead_letter_queue(body, "unreadable", f"not a job: {exc}")
        return
    job.attempt = receive_count
    logger.append_keys(
        job_id=job.id, job_kind=job.kind, correlation_id=job.correlation_id or None, attempt=receive_count
    )
    handler = handler_for(job.kind)
    if handler is None:
        logger.error(
            "no handler for job kind; parked in the DLQ", extra={"reason": f"no handler for job kind {job.kind}"}
        )
        park_in_dead_letter_queue(body, job.kind, f"no handler for job kind {job.kind}")
        return
    running = current_job.set(job)
    budget = deadline.start(remaining_ms) if remaining_ms is not None else None
    try:
        try:
            result = handler(job)
        except deadline.OutOfTime as exc:
            result = _continue(job, exc.reason)
        logger.info("job done", extra={"result": str(result)})
        metrics.count(metrics.JOBS_DONE, Kind=job.kind)
    except PermanentFailure as exc:
        doubts = getattr(exc, "keys", ())  # state.effects.EffectInDoubt: the parked copy may retake those effects
        parked = dataclasses.replace(job, retake=sorted({*job.retake, *doubts})).to_json() if doubts else body
        _park(job, parked, exc.reason + (" — check, then redrive to run it again" if doubts else ""))
    except RetryLater as exc:
        delay = exc.delay if exc.delay is not None else backoff_seconds(receive_count)
        logger.warning("job will be retried", extra={"reason": exc.reason, "delay_seconds": delay})
        _retry_later(receipt_handle, delay)
        metrics.count(metrics.JOBS_RETRIED, Kind=job.kind)
        raise
    except Exception:
        delay = backoff_seconds(receive_count)
        logger.exception("job failed; will be retried", extra={"delay_seconds": delay})
        _retry_later(receipt_handle, delay)
        metrics.count(metrics.JOBS_RETRIED, Kind=job.kind)
        raise
    finally:
        if budget is not None:
            deadline.finish(budget)
        current_job.reset(running)
        logger.remove_keys(["job_id", "job_kind", "correlation_id", "attempt"])


def run_batch(event: dict, context) -> dict:
    """Lambda's SQS event: each record is one job, run in turn. The records that failed are reported
    (ReportBatchItemFailures), so SQS deletes the rest; a batch whose every record failed is reported the same way,
    not as a Lambda error: its messages are already hidden for their retry delay."""
    failures = []
    for record in event.get("Records") or []:
        try:
            receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
            remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
            run_record(record["body"], record["receiptHandle"], receives, remaining_ms)
        except Exception:  # logged where it happened; SQS hands the record over again after its delay
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
