"""The README is the contract for operators and newcomers: every setting with its default, and tables that render."""

from __future__ import annotations

import re
from pathlib import Path

from opsbot.settings import ENVIRONMENT

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_stack_setting_is_documented_with_its_default():
    rows = {line.split("|")[1].strip(" `"): line for line in README.splitlines() if line.startswith("| `")}
    for name, (_description, default) in ENVIRONMENT.items():
        assert name in rows, f"README does not document {name}"
        if default:
            assert f"`{default}`" in rows[name], f"README gives the wrong default for {name}"


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README


def table_problems(markdown: str) -> list[str]:
    """Tables that will not render as one: a run of `|` rows without a header and delimiter row, which is what a
    blank line inside a table leaves behind (its rows after the blank line become a paragraph of pipes)."""
    lines = markdown.splitlines()
    problems, fenced, in_table, blank_after_table = [], False, False, 0
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced, in_table, blank_after_table = not fenced, False, 0
        elif fenced:
            continue
        elif line.lstrip().startswith("|"):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if not in_table and not re.fullmatch(r"\s*\|(\s*:?-{3,}:?\s*\|)+\s*", following):
                problems.append(
                    f"line {index + 1}: table rows without a header"
                    + (f", after the blank line {blank_after_table}" if blank_after_table else "")
                )
            in_table = True
        elif line.strip():
            in_table, blank_after_table = False, 0
        elif in_table:
            in_table, blank_after_table = False, index + 1
    return problems


def test_table_check_finds_a_table_split_by_a_blank_line():
    split = "| key | meaning |\n|---|---|\n| `a` | one |\n\n| `b` | two |\n| `c` | three |\n\ntext\n"
    assert table_problems(split) == ["line 5: table rows without a header, after the blank line 4"]
    two_tables = "| a | b |\n|---|---|\n| 1 | 2 |\n\n| c | d |\n|---|---|\n| 3 | 4 |\n"
    assert table_problems(two_tables) == []
    assert table_problems("```\n| a |\n\n| b |\n```\n") == []  # code is not a table


def test_every_table_in_the_readme_renders_as_one_table():
    assert table_problems(README) == []
    assert README.count("|---|") >= 11  # the tables are still there to check
