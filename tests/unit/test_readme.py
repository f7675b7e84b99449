"""The README's settings table is the contract for operators: it must list every setting with its default."""
from __future__ import annotations

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
