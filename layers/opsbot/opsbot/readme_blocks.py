"""Blocks of the README generated from the code (the chat and merge-request command references), so the README
cannot drift from the registries: each generator prints its block, or rewrites it between its markers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def replace_block(text: str, block: str, start: str, end: str) -> str:
    """`text` with the block between the `start` and `end` markers replaced."""
    if start not in text or end not in text:
        raise ValueError(f"the README has no {start} … {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def main(argv: list[str] | None, generate: Callable[[], str], start: str, end: str, module: str, doc: str) -> int:
    """Print the block, or with --write rewrite it in a README."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    parser.add_argument("--write", metavar="README", help="rewrite the generated block in this file")
    args = parser.parse_args(argv)
    if not args.write:
        print(generate())
        return 0
    path = Path(args.write)
    path.write_text(replace_block(path.read_text(encoding="utf-8"), generate(), start, end), encoding="utf-8")
    print(f"updated the generated block in {path}")
    return 0
