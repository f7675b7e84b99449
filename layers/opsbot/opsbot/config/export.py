"""The stored config as files again: exported into a directory, or compared with one.

Both work on the config's data, not its text: the store keeps what the YAML said, not its comments or layout.
So an export is plain YAML in a stable order, and a diff shows differences of content only.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml

from opsbot.config.model import Document


def as_yaml(data: object, sort_keys: bool = False) -> str:
    plain = json.loads(json.dumps(data, ensure_ascii=False))  # the line-numbered mappings as plain dicts
    return yaml.safe_dump(plain, allow_unicode=True, sort_keys=sort_keys, default_flow_style=False, width=120)


def write_directory(documents: list[Document], directory: Path, version: str) -> list[Path]:
    """Write every document as <directory>/<name>; the directory must be empty or new."""
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty: export into a new directory")
    written = []
    for document in sorted(documents, key=lambda d: d.name):
        path = directory / document.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"# exported from opsbot's store, version {version}\n{as_yaml(document.data)}", encoding="utf-8"
        )
        written.append(path)
    return written


def diff(local: list[Document], stored: list[Document], stored_version: str) -> list[str]:
    """A unified diff, file by file, from the stored config to the local one; empty when they agree."""
    # Keys sorted on both sides: the order of keys in a mapping is layout, not content.
    mine = {d.name: as_yaml(d.data, sort_keys=True) for d in local}
    theirs = {d.name: as_yaml(d.data, sort_keys=True) for d in stored}
    lines: list[str] = []
    for name in sorted(set(mine) | set(theirs)):
        if mine.get(name) == theirs.get(name):
            continue
        lines += difflib.unified_diff(
            theirs.get(name, "").splitlines(keepends=True),
            mine.get(name, "").splitlines(keepends=True),
            fromfile=f"store@{stored_version}/{name}" if name in theirs else "/dev/null",
            tofile=f"local/{name}" if name in mine else "/dev/null",
        )
    return [line if line.endswith("\n") else line + "\n" for line in lines]
