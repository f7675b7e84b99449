"""A project's `review:` section: merge-request automation (opsbot.review), opt-in per project.

Kept apart from model.py so that the section's keys, defaults and checks read in one place; model.py calls
`parse()` with its line-aware checker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REVIEW_KEYS = {
    "enabled",
    "reviewers",
    "generated",
    "path_labels",
    "labels",
    "merge_method",
    "notify_reviewers",
    "fallback_reviewers",
    "approvers",
    "welcome",
    "roles",
}
MERGE_METHODS = ("merge", "squash")
_LABEL = re.compile(r"^[^\s,][^,]{0,99}$")  # GitLab labels may hold spaces, but a comma splits add_labels


@dataclass(frozen=True)
class Review:
    enabled: bool = False
    reviewers: int = 2  # how many reviewers blunderbuss assigns
    generated: tuple[str, ...] = ()  # globs of files the size label ignores
    path_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # label -> globs
    labels: tuple[str, ...] = ()  # what /label and /remove-label may touch
    merge_method: str = "merge"  # merge | squash
    notify_reviewers: bool = False  # @-mention assigned reviewers in the project's DingTalk group
    fallback_reviewers: tuple[str, ...] = ()  # GitLab usernames, when no OWNERS file names reviewers
    approvers: tuple[str, ...] = ()  # GitLab usernames who cover paths no OWNERS file covers
    welcome: bool = True  # a note for a first-time contributor
    # slash command -> the people[].roles that may use it (on top of its own rule, e.g. OWNERS for /approve);
    # commands not listed are open to anyone who can comment
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)


def parse(checker, root: dict) -> Review:
    spec = checker.mapping(root.get("review"), REVIEW_KEYS, "review", root, "review")
    if not spec:
        return Review()
    method = checker.string(spec, "merge_method", "review", default="merge")
    if method not in MERGE_METHODS:
        checker.problem(spec, "merge_method", f"review.merge_method must be one of {', '.join(MERGE_METHODS)}")
        method = "merge"
    path_labels: dict[str, tuple[str, ...]] = {}
    by_label = checker.named_sections(spec, "path_labels", "label")
    for label, _ in by_label.items():
        if not _LABEL.match(str(label)):
            checker.problem(by_label, label, f"review.path_labels: '{label}' is not a usable label (no commas)")
        path_labels[str(label)] = checker.strings(by_label, label, "review.path_labels")
    labels = checker.strings(spec, "labels", "review")
    for label in labels:
        if not _LABEL.match(label):
            checker.problem(spec, "labels", f"review.labels: '{label}' is not a usable label (no commas)")
    return Review(
        roles=_roles(checker, spec),
        enabled=checker.boolean(spec, "enabled", "review", False),
        reviewers=checker.integer(spec, "reviewers", "review", 2, 0, 10),
        generated=checker.strings(spec, "generated", "review"),
        path_labels=path_labels,
        labels=labels,
        merge_method=method,
        notify_reviewers=checker.boolean(spec, "notify_reviewers", "review", False),
        fallback_reviewers=tuple(u.lstrip("@") for u in checker.strings(spec, "fallback_reviewers", "review")),
        approvers=tuple(u.lstrip("@") for u in checker.strings(spec, "approvers", "review")),
        welcome=checker.boolean(spec, "welcome", "review", True),
    )


def _roles(checker, spec: dict) -> dict[str, tuple[str, ...]]:
    if spec.get("roles") is None:
        return {}
    known = checker.names.slash_commands if checker.names else None  # checked when declared (config/names.py)
    section = checker.named_sections(spec, "roles", "slash command")
    for name in section:
        if known is not None and str(name) not in known:
            checker.problem(
                section, name, f"review.roles: no slash command '{name}' (commands: {', '.join(sorted(known))})"
            )
    return {str(name): checker.strings(section, name, "review.roles") for name in section}
