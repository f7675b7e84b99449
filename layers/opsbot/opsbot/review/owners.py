"""OWNERS files, as Prow reads them: YAML with `approvers` and `reviewers` (GitLab usernames) in any
directory; a file is owned by the OWNERS of its directory and of every directory above it, nearest first.

An approver covers every file below their OWNERS file. Paths with no approver anywhere above them are
covered by config's `review.approvers` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import yaml

FILE_NAME = "OWNERS"


@dataclass(frozen=True)
class OwnersFile:
    directory: str
    approvers: tuple[str, ...]
    reviewers: tuple[str, ...]


def _names(value) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v).lstrip("@").lower() for v in value if isinstance(v, (str, int)) and str(v).strip())


def parse(directory: str, text: str) -> OwnersFile:
    """A broken OWNERS file owns nothing rather than stopping the review."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    data = data if isinstance(data, dict) else {}
    return OwnersFile(directory, _names(data.get("approvers")), _names(data.get("reviewers")))


def directories(path: str) -> list[str]:
    """The directories above a file, nearest first, ending with the root ""."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[:n]) for n in range(len(parts), -1, -1)]


class OwnersTree:
    """The OWNERS files that own a set of paths, each read once through `read(file_path) -> text | None`."""

    def __init__(self, paths: list[str], read: Callable[[str], str | None]):
        self.paths = list(paths)
        self.files: dict[str, OwnersFile | None] = {}
        for path in self.paths:
            for directory in directories(path):
                if directory not in self.files:
                    text = read(f"{directory}/{FILE_NAME}" if directory else FILE_NAME)
                    self.files[directory] = parse(directory, text) if text is not None else None

    def chain(self, path: str) -> list[OwnersFile]:
        return [f for d in directories(path) if (f := self.files.get(d)) is not None]

    def approvers_of(self, path: str, fallback: tuple[str, ...] = ()) -> set[str]:
        found = {a for owners in self.chain(path) for a in owners.approvers}
        return found or {a.lower() for a in fallback}

    def uncovered(self, approved_by: set[str], fallback: tuple[str, ...] = ()) -> list[str]:
        """The paths no one in `approved_by` may approve."""
        return [p for p in self.paths if not self.approvers_of(p, fallback) & approved_by]

    def may_approve(self, username: str, fallback: tuple[str, ...] = ()) -> bool:
        """Whether `username` is an approver of at least one changed path."""
        return any(username.lower() in self.approvers_of(p, fallback) for p in self.paths)

    def reviewer_levels(self) -> list[list[str]]:
        """Candidate reviewers grouped by nearness: level 0 holds the nearest OWNERS file of every path
        (its reviewers, then its approvers), level 1 the next one up, and so on."""
        levels: list[list[str]] = []
        for path in self.paths:
            for depth, owners in enumerate(f for f in self.chain(path) if f.reviewers or f.approvers):
                while len(levels) <= depth:
                    levels.append([])
                for name in owners.reviewers + owners.approvers:
                    if name not in levels[depth]:
                        levels[depth].append(name)
        return levels
