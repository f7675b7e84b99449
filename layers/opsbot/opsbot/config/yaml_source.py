"""Reading config files with YAML line numbers kept, so every error can name file and line.

The files come from a directory (the CLI, the local stack) or from a commit in the config repo (GitOps sync,
in the worker). Ingress Lambdas read the stored JSON and do not import this (nor PyYAML).
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


def parse_text(text: str, name: str, problems: list) -> Document | None:
    """One config file's text as a Document, or None with a (file, line, message) problem."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.append((name, mark.line + 1 if mark else 0, f"YAML syntax: {exc.problem or exc}"))
        return None
    except yaml.YAMLError as exc:
        problems.append((name, 0, f"cannot read: {exc}"))
        return None
    return Document(name, data)


def is_config_file(name: str) -> bool:
    """Whether a path relative to the config directory is one opsbot reads: the global file, or
    projects/<name>.yaml (not in subdirectories)."""
    if name == GLOBAL_FILE:
        return True
    folder, _, file = name.rpartition("/")
    return folder == PROJECTS_DIR and file.endswith((".yaml", ".yml")) and not file.startswith(".")


def parse_files(texts: dict[str, str]) -> tuple[list[Document], list]:
    """Documents from {relative path: text}, whatever the files came from (a directory, a GitLab commit)."""
    problems: list = []
    if GLOBAL_FILE not in texts:
        problems.append((GLOBAL_FILE, 0, f"missing: the config needs {GLOBAL_FILE}"))
    names = sorted(name for name in texts if is_config_file(name))
    documents = [parse_text(texts[name], name, problems) for name in names]
    return [d for d in documents if d is not None], problems


def read_directory(directory: str | Path) -> tuple[list[Document], list]:
    """All config documents under `directory`, and syntax problems as (file, line, message)."""
    root = Path(directory)
    texts: dict[str, str] = {}
    problems: list = []
    paths = [root / GLOBAL_FILE] if (root / GLOBAL_FILE).is_file() else []
    for path in paths + sorted((root / PROJECTS_DIR).glob("*.y*ml")):
        name = path.relative_to(root).as_posix()
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append((name, 0, f"cannot read: {exc}"))
    documents, parse_problems = parse_files(texts)
    return documents, problems + parse_problems
