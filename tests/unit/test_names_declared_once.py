"""Names that several modules share are declared once: the state table's key prefixes (state/keys.py), every job
kind (jobs/kinds.py, each with exactly one handler), and the help order of chat commands."""

from __future__ import annotations

import re
from itertools import combinations

import pytest
from unit_support import LAYER_PATH

from opsbot.jobs import kinds
from opsbot.state import keys

LAYER_CODE = {path: path.read_text(encoding="utf-8") for path in (LAYER_PATH / "opsbot").rglob("*.py")}


@pytest.mark.parametrize("group", ["PARTITIONS", "CLAIMS", "EFFECTS"])
def test_no_state_key_prefix_is_another_or_starts_another(group):
    prefixes = getattr(keys, group)
    assert len(set(prefixes)) == len(prefixes)
    for first, second in combinations(prefixes, 2):
        assert not first.startswith(second) and not second.startswith(first), (first, second)
    assert all(prefix.endswith("#") for prefix in prefixes)


def test_the_state_table_keys_are_built_from_the_declared_prefixes():
    """No module writes a state-table key of its own: a literal `"pk": {"S": f"word#…` is only in the audit
    table's code, whose keys are its own."""
    literal = re.compile(r'"pk": \{"S": f?"[a-z-]+#')
    offenders = [path.name for path, text in LAYER_CODE.items() if literal.search(text) and path.name != "audit.py"]
    assert offenders == []


def test_every_job_kind_has_exactly_one_handler_in_the_module_named_for_it():
    from opsbot.jobs.registry import HANDLERS, import_every_handler

    import_every_handler()
    assert set(HANDLERS) == set(kinds.ALL) == set(kinds.HANDLED_IN)
    assert len(set(kinds.ALL)) == len(kinds.ALL)
    for kind, module in kinds.HANDLED_IN.items():  # the handler lives where the worker will import it from
        assert HANDLERS[kind].__module__ == module, kind


def test_the_worker_imports_a_capability_with_its_first_job():
    import subprocess
    import sys

    from unit_support import FUNCTIONS, LAYER_PATH

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', r'{FUNCTIONS}/worker/app.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[1:2] and m.split('.')[1] in "
        "('chat', 'review', 'gitops', 'ops', 'notify', 'actions', 'release')))\n"
    )
    env = {"PYTHONPATH": str(LAYER_PATH), "POWERTOOLS_SERVICE_NAME": "opsbot", "PATH": "/usr/bin:/bin"}
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_jobs_are_made_and_handled_only_by_their_named_kinds():
    """A kind is never spelled out where a job is made or handled: `handles("…")`, `Job(kind="…")` and
    `accept(…, "kind.name", …)` name the constants."""
    spelled = re.compile(r'handles\("|kind="[a-z]|accept\([^)]*"[a-z]+\.[a-z_]+"')
    offenders = [path.name for path, text in LAYER_CODE.items() if spelled.search(text) and path.name != "kinds.py"]
    assert offenders == []
