"""The README's merge-request command reference is generated from the slash-command registry: this fails when
the README is stale (regenerate it with `make mr-reference`)."""

from __future__ import annotations

import pytest
from unit_support import ROOT

from opsbot.review import reference
from opsbot.review.commands import COMMANDS


@pytest.fixture
def aws(_moto):
    yield None  # nothing here reaches AWS


def test_the_readme_merge_request_command_reference_is_up_to_date():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert reference.START in text and reference.END in text, "the README has no merge-request command block"
    block = text.split(reference.START, 1)[1].split(reference.END, 1)[0].strip("\n")
    assert block == reference.markdown(), "README is stale: run `make mr-reference`"


def test_every_command_has_a_row():
    generated = reference.markdown()
    assert all(f"| `{c.usage}` |" in generated for c in COMMANDS.values())


def test_every_command_says_what_it_does_in_chinese_too():
    """README.zh-CN.md's table is made from `does_zh` and `who_zh`: a command registered without them would show an
    empty cell there."""
    missing = [f"/{c.name}" for c in COMMANDS.values() if not c.does_zh.strip() or not c.who_zh.strip()]
    assert missing == [], f"give these a does_zh (and who_zh when who= is given) in review/commands.py: {missing}"
    assert all(f"| `{c.usage}` | {c.does_zh} |" in reference.markdown("zh") for c in COMMANDS.values())
