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
