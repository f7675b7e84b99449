"""Running one queued job: dispatch by kind, retry with backoff, park what cannot succeed in the DLQ.

A retry is the same SQS message made visible again after a delay (ChangeMessageVisibility). SQS counts the
receives, and its redrive policy moves the message to the DLQ after maxReceiveCount: nothing is dropped.
"""

from __future__ import annotations

import random

from opsbot import metrics
from opsbot.aws import client
from opsbot.jobs.model import Job, PermanentFailure, RetryLater
from opsbot.jobs.queue import park_in_dead_letter_queue
from opsbot.jobs.registry import HANDLERS
from opsbot.log import logger
from opsbot.settings import settings


def backoff_seconds(receive_count: int) -> int:
    s = settings()
    delay = min(s.retry_base_seconds * 2 ** max(0, receive_count - 1), s.retry_max_seconds)
    # Jitter spreads retries out, but never past RETRY_MAX_SECONDS, "the largest retry delay".
    return int(min(delay + random.uniform(0, delay * 0.1), s.retry_max_seconds))


def _retry_later(receipt_handle: str, seconds: int) -> None:
    client("sqs").change_message_visibility(
        QueueUrl=settings().work_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=min(max(0, seconds), 43_200)
    )


def _count_parked(kind: str) -> None:
    metrics.count(metrics.JOBS_PARKED, Kind=kind)
    # Once more without Kind: the one series the parked-jobs alarm watches (an alarm cannot sum a SEARCH).
    metrics.count(metrics.JOBS_PARKED)


def run_record(body: str, receipt_handle: str, receive_count: int) -> None:
    """Run one SQS record. Raising marks it failed (the batch reports it); returning acknowledges it."""
    try:
        job = Job.from_json(body)
    except (ValueError, TypeError, KeyError) as exc:
        logger.error("unreadable job; parked in the DLQ", extra={"reason": f"not a job: {exc}"})
        park_in_dead_letter_queue(body, "unreadable", f"not a job: {exc}")
        _count_parked("unreadable")
        return
    job.attempt = receive_count
    logger.append_keys(
        job_id=job.id, job_kind=job.kind, correlation_id=job.correlation_id or None, attempt=receive_count
    )
    handler = HANDLERS.get(job.kind)
    if handler is None:
        logger.error(
            "no handler for job kind; parked in the DLQ", extra={"reason": f"no handler for job kind {job.kind}"}
        )
        park_in_dead_letter_queue(body, job.kind, f"no handler for job kind {job.kind}")
        _count_parked(job.kind)
        return
    try:
        result = handler(job)
        logger.info("job done", extra={"result": str(result)})
        metrics.count(metrics.JOBS_DONE, Kind=job.kind)
    except PermanentFailure as exc:
        logger.error("job failed for good; parked in the DLQ", extra={"reason": exc.reason})
        park_in_dead_letter_queue(body, job.kind, exc.reason)
        _count_parked(job.kind)
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
        logger.remove_keys(["job_id", "job_kind", "correlation_id", "attempt"])
