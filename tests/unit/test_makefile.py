"""The Makefile is a newcomer's first contact: its variables must mean what they say, and `make help` must list
every public target."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def make_builtin_variables() -> set[str]:
    """The variables GNU make defines itself (`AS`, `CC`, `RM`, …): one of them as a user's option is never empty."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    database = subprocess.run(["make", "-p", "-f", "/dev/null"], capture_output=True, text=True, cwd="/").stdout
    return set(re.findall(r"^# default\n(\w+) :?=", database, flags=re.M))


def user_variables() -> set[str]:
    """What a person passes on the command line: read by a recipe, defined nowhere in the Makefile."""
    referenced = set(re.findall(r"\$\((\w+)\)", MAKEFILE))
    defined = set(re.findall(r"^(?:export\s+)?(\w+)\s*[:?+]?=", MAKEFILE, flags=re.M))
    return referenced - defined


def test_no_option_is_one_of_makes_own_variables():
    builtin = make_builtin_variables()
    assert "AS" in builtin  # the assembler: `make chat AS=…` was once never empty, so never alice
    assert user_variables() & builtin == set()
    assert {"WHO", "MSG", "EVENT"} <= user_variables()
