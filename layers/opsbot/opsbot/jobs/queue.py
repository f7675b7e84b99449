"""Putting jobs on the work queue, and parking them on the dead-letter queue."""

from __future__ import annotations

from opsbot import metrics
from opsbot.aws import client
from opsbot.jobs.model import Job
from opsbot.settings import settings

MAX_DELAY_SECONDS = 900  # SQS's ceiling for DelaySeconds


def enqueue(job: Job, delay_seconds: int = 0) -> None:
    client("sqs").send_message(
        QueueUrl=settings().work_queue_url,
        MessageBody=job.to_json(),
        DelaySeconds=max(0, min(int(delay_seconds), MAX_DELAY_SECONDS)),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": job.kind}},
    )


def park_in_dead_letter_queue(body: str, kind: str, reason: str) -> None:
    """Keep a job that must not be retried, with the reason, so an operator can redrive it after a fix."""
    client("sqs").send_message(
        QueueUrl=settings().dead_letter_queue_url,
        MessageBody=body,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": kind},
            "reason": {"DataType": "String", "StringValue": reason[:1000]},
        },
    )
    metrics.count(metrics.JOBS_PARKED, Kind=kind)
    # Once more without Kind: the one series the parked-jobs alarm watches (an alarm cannot sum a SEARCH).
    metrics.count(metrics.JOBS_PARKED)
