"""The single place where a verified webhook becomes a job: dedupe, then enqueue."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from opsbot import metrics
from opsbot.ingress.errors import InProgress
from opsbot.jobs.model import Job
from opsbot.jobs.queue import enqueue
from opsbot.log import logger
from opsbot.state import idempotency

# Longer than any ingress function's timeout (15 s, template.yaml: a unit test checks): a pending claim this old was
# made by a request that has ended, one way or another.
TAKEOVER_AFTER_SECONDS = 20


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


def claim_key_for(source: str, dedupe_key: str) -> str:
    # Readable keys help an operator; a sender-chosen key too long for a DynamoDB key is stored as its hash.
    return f"{source}#{dedupe_key}" if len(dedupe_key) <= 512 else f"{source}#sha256:{job_id_for(source, dedupe_key)}"


def accept(
    source: str, dedupe_key: str, kind: str, payload: dict, ttl_seconds: int | None = None, permanent: bool = False
) -> Outcome:
    """Claim the delivery's dedupe key, then enqueue exactly one job for it. The key is remembered for
    `ttl_seconds` (default IDEMPOTENCY_TTL_SECONDS), e.g. as long as a release link could still be used, or for
    good when `permanent`: the marker of an act (a chat message's), which no later expiry may re-open.

    The claim is pending until the job is queued (state.idempotency): a request stopped in between leaves it
    pending, and a retry takes it over once that request cannot be running any more. InProgress (503) until then.
    A job queued twice that way (the first request stopped after its send) has one id, and the worker's effects
    run once per job."""
    job_id = job_id_for(source, dedupe_key)
    claim = idempotency.claim_delivery(
        claim_key_for(source, dedupe_key), ttl_seconds, TAKEOVER_AFTER_SECONDS, permanent=permanent
    )
    if claim == idempotency.DUPLICATE:
        logger.info("duplicate delivery", extra={"source": source, "dedupe_key": dedupe_key[:200]})
        metrics.count(metrics.DUPLICATE_DELIVERIES, Source=source)
        return Outcome("duplicate", job_id)
    if claim == idempotency.IN_PROGRESS:
        logger.info("delivery being queued by another request", extra={"source": source, "job_id": job_id})
        raise InProgress("this delivery is being queued by an earlier request; retry in a minute")
    try:
        enqueue(Job(kind=kind, payload=payload, id=job_id, correlation_id=logger.get_correlation_id() or ""))
    except Exception:
        # The job is not on the queue: forget the claim so the sender's retry is not taken for a duplicate.
        idempotency.release_claim(claim)
        raise
    try:
        idempotency.confirm(claim)
    except Exception:
        # The job is queued: the answer is 202. A retry after the takeover time would queue it once more, which the
        # worker's run-once effects absorb.
        logger.warning("queued, but its claim is still pending", exc_info=True, extra={"job_id": job_id})
    logger.info("queued", extra={"source": source, "kind": kind, "job_id": job_id})
    metrics.count(metrics.JOBS_QUEUED, Kind=kind)
    return Outcome("queued", job_id)


def ignored(reason: str) -> Outcome:
    logger.debug("ignored", extra={"reason": reason})
    return Outcome("ignored", reason=reason)
