"""Which reviewers to assign, like Prow's blunderbuss: candidates from the nearest OWNERS files first (config's
fallback list when OWNERS names none), never the author nor anyone already reviewing, the least loaded first."""

from __future__ import annotations

from collections.abc import Callable


def choose(
    levels: list[list[str]],
    fallback: tuple[str, ...],
    author: str,
    already: set[str],
    wanted: int,
    load: Callable[[str], int],
) -> list[str]:
    """Up to `wanted` minus the reviewers already there. `load(username)` is how many open reviews they have;
    within a level the least loaded go first, then by name so that the choice is stable."""
    excluded = {author.lower()} | {a.lower() for a in already}
    needed = wanted - len(already)
    if needed <= 0:
        return []
    if not any(levels):
        levels = [[f.lower() for f in fallback]]
    chosen: list[str] = []
    for level in levels:
        candidates = [c for c in level if c not in excluded and c not in chosen]
        chosen += sorted(candidates, key=lambda name: (load(name), name))[: needed - len(chosen)]
        if len(chosen) >= needed:
            break
    return chosen
