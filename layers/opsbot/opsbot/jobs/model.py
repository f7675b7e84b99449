"""A Job is what ingress hands the worker: a kind that picks the handler, and its payload."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field


@dataclass
class Job:
    kind: str
    payload: dict
    # Stable across redeliveries of the same webhook: derived from its dedupe key when there is one.
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    correlation_id: str = ""
    created_at: float = field(default_factory=time.time)
    # Effects (state.effects keys) an operator's redrive may run again although an earlier attempt may have done
    # them: set on the copy the worker parks when an effect is in doubt, so that only a redrive retakes it.
    retake: list[str] = field(default_factory=list)
    # How many times this job ran out of time and was queued again to go on where it stopped (jobs.deadline).
    continued: int = 0
    # Which delivery of the SQS message this is (1 for the first); set by the worker, not serialised.
    attempt: int = field(default=1, compare=False)

    def to_json(self) -> str:
        body = asdict(self)
        body.pop("attempt")
        for name in ("retake", "continued"):  # left out while unset: most jobs never carry them
            if not body[name]:
                body.pop(name)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        names = ("kind", "payload", "id", "correlation_id", "created_at", "retake", "continued")
        return cls(**{k: data[k] for k in names if k in data})


# The job the worker is running now: state.effects reads its `retake`.
current_job: ContextVar[Job | None] = ContextVar("current_job", default=None)


MAX_RECEIVES = 6  # the work queue's maxReceiveCount (template.yaml): SQS moves a job to the DLQ after this many


class RetryLater(Exception):
    """The peer is busy or down; try the job again after `delay` seconds (None: exponential backoff).

    `in_doubt`: the peer may have done what it was asked (its answer was lost, e.g. a read timeout), so an effect
    that made this call must not simply run again (state.effects)."""

    def __init__(self, reason: str, delay: int | None = None, in_doubt: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.in_doubt = in_doubt


class PermanentFailure(Exception):
    """Retrying cannot help (bad robot token, security rule): park the job in the DLQ at once."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_payload[Parsed](parse: Callable[[dict], Parsed], payload: dict, what: str) -> Parsed:
    """`parse(payload)` in the worker, with the parser ingress checked the body with. Ingress answers a malformed
    body with a 400, so a refusal here is a bug (an ingress older than this worker, or a job made elsewhere): the
    job is parked with the reason, since retrying cannot help."""
    try:
        return parse(payload)
    except ValueError as exc:
        raise PermanentFailure(f"bug: a {what} job that ingress should have refused: {exc}") from None
