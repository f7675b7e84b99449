"""The single place where a verified webhook becomes a job: dedupe, then enqueue."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from opsbot import metrics
from opsbot.jobs.model import Job
from opsbot.jobs.queue import enqueue
from opsbot.log import logger
from opsbot.state import idempotency


@dataclass(frozen=True)
class Outcome:
    status: str  # "queued", "duplicate" or "ignored"
    job_id: str = ""
    reason: str = ""

    @property
    def http_status(self) -> int:
        return 202 if self.status == "queued" else 200  # accepted for later work, or nothing left to do

    def as_dict(self) -> dict:
        return {k: v for k, v in (("status", self.status), ("job", self.job_id), ("reason", self.reason)) if v}


def job_id_for(source: str, dedupe_key: str) -> str:
    return hashlib.sha256(f"{source}#{dedupe_key}".encode()).hexdigest()[:32]


def accept(source: str, dedupe_key: str, kind: str, payload: dict, ttl_seconds: int | None = None) -> Outcome:
    """Claim the delivery's dedupe key, then enqueue exactly one job for it. The key is remembered for
    `ttl_seconds` (default IDEMPOTENCY_TTL_SECONDS), e.g. as long as a release link could still be used."""
    job_id = job_id_for(source, dedupe_key)
    # Readable keys help an operator; a sender-chosen key too long for a DynamoDB key is stored as its hash.
    claim_key = f"{source}#{dedupe_key}" if len(dedupe_key) <= 512 else f"{source}#sha256:{job_id}"
    if not idempotency.claim(claim_key, ttl_seconds):
        logger.info("duplicate delivery", extra={"source": source, "dedupe_key": dedupe_key[:200]})
        metrics.count(metrics.DUPLICATE_DELIVERIES, Source=source)
        return Outcome("duplicate", job_id)
    try:
        enqueue(Job(kind=kind, payload=payload, id=job_id, correlation_id=logger.get_correlation_id() or ""))
    except Exception:
        # The job is not on the queue: forget the claim so the sender's retry is not taken for a duplicate.
        idempotency.release(claim_key)
        raise
    logger.info("queued", extra={"source": source, "kind": kind, "job_id": job_id})
    metrics.count(metrics.JOBS_QUEUED, Kind=kind)
    return Outcome("queued", job_id)


def ignored(reason: str) -> Outcome:
    logger.debug("ignored", extra={"reason": reason})
    return Outcome("ignored", reason=reason)
