"""The names a config may refer to that higher layers define: chat commands (`permissions:`) and merge-request slash
commands (`review.roles`).

Config imports no capability. The entry points that save a config (the worker, which syncs pushes and rolls
back; the config CLI; the local stack) declare what exists, with `declare(wiring.known_names)`; validation then
checks the names. Where nothing was declared (an ingress function loading the stored, already checked config),
names are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class KnownNames:
    commands: frozenset[str] = field(default_factory=frozenset)  # chat commands, `config rollback` included
    slash_commands: frozenset[str] = field(default_factory=frozenset)  # `lgtm`, `approve`, … (without the slash)
    approvable: frozenset[str] = field(default_factory=frozenset)  # commands `permissions.<name>.approvals` applies to


_source: Callable[[], KnownNames] | None = None
_known: KnownNames | None = None


def declare(source: Callable[[], KnownNames] | None) -> None:
    """What exists, as a function called on the first validation that needs it (None: check no names)."""
    global _source, _known
    _source, _known = source, None


def declared() -> KnownNames | None:
    global _known
    if _known is None and _source is not None:
        _known = _source()
    return _known
