"""Size and path labels. Sizes follow Prow's size plugin: added + deleted lines, files config calls generated
left out, thresholds < 10, < 30, < 100, < 500, < 1000 and above."""

from __future__ import annotations

from opsbot.review.globs import matches

SIZES = (("XS", 10), ("S", 30), ("M", 100), ("L", 500), ("XL", 1000))
SIZE_PREFIX = "size/"


def size_label(changed_lines: int) -> str:
    for name, below in SIZES:
        if changed_lines < below:
            return SIZE_PREFIX + name
    return SIZE_PREFIX + "XXL"


def diff_lines(diff: str) -> int:
    """Added plus deleted lines of one file's unified diff (the `+++`/`---` headers are not lines)."""
    return sum(
        1
        for line in diff.splitlines()
        if (line.startswith("+") and not line.startswith("+++"))
        or (line.startswith("-") and not line.startswith("---"))
    )


def changed_lines(diffs: list[dict], generated: tuple[str, ...]) -> int:
    return sum(
        diff_lines(str(d.get("diff") or ""))
        for d in diffs
        if not matches(str(d.get("new_path") or d.get("old_path") or ""), generated)
    )


def changed_paths(diffs: list[dict]) -> list[str]:
    return sorted({p for d in diffs for p in (d.get("old_path"), d.get("new_path")) if p})


def path_labels(paths: list[str], rules: dict[str, tuple[str, ...]]) -> set[str]:
    return {label for label, globs in rules.items() if any(matches(p, globs) for p in paths)}


def label_changes(
    current: list[str], paths: list[str], size: str, rules: dict[str, tuple[str, ...]]
) -> tuple[list[str], list[str]]:
    """(labels to add, labels to remove): the size label replaces any other size label; path labels are only
    added, since a person may have set one by hand."""
    add = sorted(({size} | path_labels(paths, rules)) - set(current))
    remove = sorted(label for label in current if label.startswith(SIZE_PREFIX) and label != size)
    return add, remove
