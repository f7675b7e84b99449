"""Reading the config directory with YAML line numbers kept, so every error can name file and line.

Only the CLI and the local stack import this (and so PyYAML); Lambdas read the stored JSON.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from opsbot.config.model import GLOBAL_FILE, PROJECTS_DIR, Document


class LineDict(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict


class LineList(list):
    line: int = 0
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line, mapping.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader, node):
    items = LineList(loader.construct_object(child, deep=True) for child in node.value)
    items.line, items.item_lines = node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value]
    return items


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _parse(path: Path, name: str, problems: list) -> Document | None:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.append((name, mark.line + 1 if mark else 0, f"YAML syntax: {exc.problem or exc}"))
        return None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append((name, 0, f"cannot read: {exc}"))
        return None
    return Document(name, data)


def read_directory(directory: str | Path) -> tuple[list[Document], list]:
    """All config documents under `directory`, and syntax problems as (file, line, message)."""
    root = Path(directory)
    problems: list = []
    documents: list[Document] = []
    if not (root / GLOBAL_FILE).is_file():
        problems.append((GLOBAL_FILE, 0, f"missing: the config directory {root} needs {GLOBAL_FILE}"))
    else:
        documents.append(_parse(root / GLOBAL_FILE, GLOBAL_FILE, problems))
    for path in sorted((root / PROJECTS_DIR).glob("*.y*ml")):
        documents.append(_parse(path, f"{PROJECTS_DIR}/{path.name}", problems))
    return [d for d in documents if d is not None], problems
