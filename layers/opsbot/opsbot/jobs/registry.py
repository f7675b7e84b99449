"""Job kind → handler. Each capability registers its own kinds when its module is imported; the worker imports
that module (jobs.kinds.HANDLED_IN) with the first job of its kind."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from opsbot.jobs.kinds import HANDLED_IN
from opsbot.jobs.model import Job

HANDLERS: dict[str, Callable[[Job], object]] = {}


def handles(kind: str):
    def register(handler: Callable[[Job], object]):
        if kind in HANDLERS:
            raise ValueError(f"two handlers for job kind {kind}")
        HANDLERS[kind] = handler
        return handler

    return register


def handler_for(kind: str) -> Callable[[Job], object] | None:
    """The handler of a kind, its module imported on first use; None for a kind nothing handles."""
    if kind not in HANDLERS and kind in HANDLED_IN:
        importlib.import_module(HANDLED_IN[kind])
    return HANDLERS.get(kind)


def import_every_handler() -> None:
    """Import every handler module (tests, and a check that each kind has its handler)."""
    for module in sorted(set(HANDLED_IN.values())):
        importlib.import_module(module)


# Called with a job that ran out of time, before it is queued again to go on (state.reads keeps what it read).
ON_OUT_OF_TIME: list[Callable[[Job], None]] = []
