"""What `sam build` and `make` install is locked: every requirements file that goes into a function, and the tools'
(the SAM CLI builds the functions), is a pip-compile lock of its whole tree, each package pinned to one version
with its hashes, and none names a directory of one machine (`--find-links`, a `file:` URL or an index URL).
The worker's lock is constrained to the layer's, so a package both hold is one version in both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {
    "layer": ROOT / "layers" / "opsbot" / "requirements.txt",
    "worker": ROOT / "functions" / "worker" / "requirements.txt",
    "tools": ROOT / "requirements-tools.txt",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def pins(path: Path) -> dict[str, tuple[str, int]]:
    """package -> (version, how many hashes follow it), for every requirement line of a pip-compile lock."""
    found: dict[str, tuple[str, int]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            current = match.group(1).lower()
            found[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def requirement_lines(path: Path) -> list[str]:
    """Lines that are not comments, hashes or continuations: each must be a pinned requirement."""
    return [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "--hash=")) and not line.startswith(" ")
    ]


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_each_lock_pins_every_package_with_hashes_and_names_no_local_place(name):
    path = LOCKS[name]
    lines = requirement_lines(path)
    assert lines, f"{path} holds no requirements"
    assert [line for line in lines if not _PIN.match(line)] == []  # no `>=`, no option lines (--find-links …)
    text = path.read_text(encoding="utf-8")
    written = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for local in ("--find-links", "-f ", "file:", "--index-url", "--extra-index-url", "/opt/"):
        assert local not in written, local
    unhashed = [package for package, (_version, hashes) in pins(path).items() if hashes == 0]
    assert unhashed == []
    assert "pip-compile" in text and "--generate-hashes" in text  # made by `make lock`, not by hand


def test_the_worker_lock_holds_its_whole_tree_with_the_layers_versions():
    worker, layer = pins(LOCKS["worker"]), pins(LOCKS["layer"])
    assert worker["kubernetes"][0].startswith("36.")  # 37 needs python-dateutil >= 3, which botocore refuses
    assert int(worker["python-dateutil"][0].split(".")[0]) < 3
    # the packages the issue found floating are locked with the rest of the tree
    assert {"urllib3", "requests", "websocket-client", "requests-oauthlib", "oauthlib"} <= set(worker)
    shared = set(worker) & set(layer)
    assert {"requests", "urllib3", "pyyaml"} <= shared
    assert {p: worker[p][0] for p in shared} == {p: layer[p][0] for p in shared}
    source = (ROOT / "functions" / "worker" / "requirements.in").read_text(encoding="utf-8")
    assert "-c ../../layers/opsbot/requirements.txt" in source


def test_the_tools_and_the_makefile_install_the_locks_with_require_hashes():
    tools = pins(LOCKS["tools"])
    assert "aws-sam-cli" in tools and "pip-tools" in tools
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for lock in ("layers/opsbot/requirements.txt", "functions/worker/requirements.txt", "requirements-tools.txt"):
        assert re.search(rf"install --quiet --require-hashes -r {re.escape(lock)}$", makefile, flags=re.M), lock
    # `make lock` re-resolves all three, and writes no machine-local --find-links into them
    assert "--no-emit-find-links" in makefile and "--no-emit-index-url" in makefile
    for source in ("requirements.in", "requirements-tools.in"):
        assert f" {source}" in makefile
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r functions/worker/requirements.txt" not in dev  # a hashed lock cannot be mixed with unhashed lines
