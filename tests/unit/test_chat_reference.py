"""The README's chat command reference is generated from the registry: this fails when the README is stale
(regenerate it with `make chat-reference`)."""

from __future__ import annotations

import pytest
from unit_support import ROOT

from opsbot.chat import reference
from opsbot.chat.commands import all_commands
from opsbot.chat.registry import AREAS

README = ROOT / "README.md"


@pytest.fixture
def aws(_moto):
    """Nothing here reaches AWS: no fresh moto stack per test (moto stays patched in, so a stray call cannot leave
    the machine)."""
    yield None


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert reference.START in text and reference.END in text, "the README has no chat command reference block"
    return text.split(reference.START, 1)[1].split(reference.END, 1)[0].strip("\n")


def test_the_readme_command_reference_is_up_to_date():
    assert readme_block() == reference.markdown(), "README is stale: run `make chat-reference`"


def test_the_reference_has_a_row_and_the_examples_of_every_command():
    generated = reference.markdown()
    rows = [line for line in generated.splitlines() if line.startswith("| ") and " | `" in line]
    by_area = [cmd.name for commands in all_commands().by_area().values() for cmd in commands]
    assert [row.split("`")[1] for row in rows] == by_area and sorted(by_area) == sorted(all_commands().commands)
    for cmd in all_commands().commands.values():
        row = next(r for r in rows if f" | `{cmd.name}` | " in r)
        assert row.startswith(f"| {AREAS[cmd.area][1]} · {AREAS[cmd.area][0]} |")
        assert cmd.summary["en"] in row and cmd.summary["zh"] in row
        assert (cmd.role or "anyone") in row
        assert ("acts" if cmd.acts else "reads") in row
        assert all(f"`@opsbot {example}`" in generated for example in cmd.examples)
    # a usage with | (deploy's <build|branch>) must not split its table cell
    assert all(row.count(" | ") == 6 for row in rows)


def test_replace_block_rewrites_only_between_the_markers():
    text = f"# Title\n\nbefore\n{reference.START}\nold\n{reference.END}\nafter\n"
    assert reference.replace_block(text, "new") == (
        f"# Title\n\nbefore\n{reference.START}\nnew\n{reference.END}\nafter\n"
    )
    with pytest.raises(ValueError):
        reference.replace_block("# no markers", "new")


def test_write_keeps_the_rest_of_the_file(tmp_path, capsys):
    target = tmp_path / "README.md"
    target.write_text(f"intro\n{reference.START}\nstale\n{reference.END}\noutro\n", encoding="utf-8")
    assert reference.main(["--write", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert reference.markdown() in text and "stale" not in text
