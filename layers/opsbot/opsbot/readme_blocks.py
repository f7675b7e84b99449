"""Blocks of the READMEs generated from the code (the chat and merge-request command references, the config keys),
so that neither README can drift from the registries: each generator prints its block in a language, or rewrites it
between its markers in README.md (English) and README.zh-CN.md (Chinese). Both files carry the same markers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

LANGUAGES = ("en", "zh")
# Each README and the language its generated blocks are written in.
READMES = {"README.md": "en", "README.zh-CN.md": "zh"}


def language_of(path: Path | str) -> str:
    """The language of a README's generated blocks: Chinese for a `*.zh-CN.md` twin, else English."""
    return "zh" if Path(path).name.endswith(".zh-CN.md") else "en"


def replace_block(text: str, block: str, start: str, end: str) -> str:
    """`text` with the block between the `start` and `end` markers replaced."""
    if start not in text or end not in text:
        raise ValueError(f"the README has no {start} … {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def block_in(text: str, start: str, end: str) -> str | None:
    """What a README holds between the markers now (None when it has no such block)."""
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def main(argv: list[str] | None, generate: Callable[..., str], start: str, end: str, module: str, doc: str) -> int:
    """Print the block (--language en|zh), or with --write rewrite it in each README named, in that README's
    language (README.zh-CN.md: Chinese)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    parser.add_argument(
        "--write", metavar="README", action="append", default=[], help="rewrite the generated block in this file"
    )
    parser.add_argument("--language", choices=LANGUAGES, default="en", help="the language to print (default en)")
    args = parser.parse_args(argv)
    if not args.write:
        print(generate(args.language))
        return 0
    for name in args.write:
        path = Path(name)
        block = generate(language_of(path))
        path.write_text(replace_block(path.read_text(encoding="utf-8"), block, start, end), encoding="utf-8")
        print(f"updated the generated block in {path}")
    return 0
