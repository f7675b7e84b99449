"""Job kind → handler. Each capability registers its own kinds when its module is imported."""

from __future__ import annotations

from collections.abc import Callable

from opsbot.jobs.model import Job

HANDLERS: dict[str, Callable[[Job], object]] = {}


def handles(kind: str):
    def register(handler: Callable[[Job], object]):
        if kind in HANDLERS:
            raise ValueError(f"two handlers for job kind {kind}")
        HANDLERS[kind] = handler
        return handler

    return register


# Called with a job that ran out of time, before it is queued again to go on (state.reads keeps what it read).
ON_OUT_OF_TIME: list[Callable[[Job], None]] = []
