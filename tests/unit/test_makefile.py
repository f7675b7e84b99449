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


def phony_targets() -> list[str]:
    return [name for line in re.findall(r"^\.PHONY:(.*)$", MAKEFILE, flags=re.M) for name in line.split()]


def test_every_public_target_has_a_help_comment_and_a_rule():
    described = re.findall(r"^## ([a-z][a-z-]*): \S", MAKEFILE, flags=re.M)
    rules = re.findall(r"^([a-z][a-z-]*):(?!=)", MAKEFILE, flags=re.M)
    assert sorted(described) == sorted(phony_targets()) == sorted(rules)
    for name in described:  # each comment sits right above its rule (continuation lines between are fine)
        assert re.search(rf"^## {name}: .*\n(?:##   .*\n)*{re.escape(name)}:", MAKEFILE, flags=re.M), name


def test_make_alone_prints_help_listing_every_public_target():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")

    def run(*goal):
        return subprocess.run(
            ["make", "--no-print-directory", "-s", *goal], cwd=ROOT, capture_output=True, text=True, timeout=30
        )

    alone, help_ = run(), run("help")
    assert alone.returncode == help_.returncode == 0 and alone.stdout == help_.stdout
    listed = re.findall(r"^  ([a-z][a-z-]*) ", help_.stdout, flags=re.M)
    assert listed == re.findall(r"^## ([a-z][a-z-]*): ", MAKEFILE, flags=re.M)
    assert "make run" in help_.stdout.splitlines()[0] and "make test" in help_.stdout.splitlines()[0]
    assert re.search(r"^help:\s*$", MAKEFILE, flags=re.M)  # no prerequisites: help installs nothing


def test_every_make_command_in_the_readme_names_a_target_and_options_the_makefile_reads():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):(?!=)", MAKEFILE, flags=re.M))
    read = set(re.findall(r"\$\((\w+)\)", MAKEFILE))
    option = r"\s+\[?[A-Z][A-Z_]*=(?:'[^']*'|[^\s`'\]]+)\]?"  # NAME=value, NAME='a b' or [NAME=value]
    commands = re.findall(rf"(?:^|`)make ([a-z][a-z-]*)((?:{option})*)", readme, flags=re.M)  # in code only
    assert len(commands) > 20
    for target, options in commands:
        assert target in targets, f"the README shows `make {target}`, which the Makefile does not have"
        for name in re.findall(r"([A-Z][A-Z_]*)=", options):
            assert name in read, f"the README passes {name}= to make {target}, which the Makefile never reads"


def test_make_help_and_the_readme_say_the_same_durations():
    """How long the long targets take is measured and said twice, in `make help` and in the README's table under
    "The two commands": the two agree, so that a new measurement is written into both."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("test", "fuzz", "bench", "chaos"):
        comment = re.search(rf"^## {target}: (.*\n(?:##   .*\n)*)", MAKEFILE, flags=re.M).group(1)
        said = re.search(r"about (\d+(?:\.\d+)?) minutes", comment)
        assert said, f"make help does not say how long make {target} takes"
        assert f"| `make {target}` | about {said.group(1)} minutes |" in readme, f"the README says otherwise: {target}"
