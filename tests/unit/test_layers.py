"""The layer's structure: its packages stand in layers that only import downward (or within their own layer), and no
module imports, directly or round about, a module that imports it. Every import counts, a late one inside a
function included. The README's code map lists the same layers."""

from __future__ import annotations

import ast
from collections import defaultdict

from unit_support import LAYER_PATH

# Bottom to top. A package (or top-level module) may import from its own layer and the ones below it.
LAYERS = (
    ("settings", "log", "i18n", "markup", "text", "readme_blocks"),  # foundations: nothing of opsbot's
    ("aws", "metrics"),  # clients and the one metric writer
    ("jobs", "secrets", "peers", "audit"),  # the job envelope and queue, secrets, peers' failures, the audit log
    ("state",),  # idempotency, run-once effects, branch status, the key prefixes
    ("config",),  # the config model, validation and store
    ("ingress", "message"),  # the shared request checks and accept; the message model
    ("drone", "gitlab", "dingtalk", "channels", "argocd"),  # the integrations; the chat channels' adapters
    ("authz", "delivery"),  # the authorization core; posting messages
    ("release", "gitops"),  # capabilities
    ("notify", "review", "acts", "ops", "promotion", "governance"),  # capabilities that use release; ops; GitOps
    # releases; release governance's schedule (freeze announcements, the weekly report)
    ("actions", "chat"),  # what people drive: release links and chat
    ("wiring", "config_cli"),  # what entry points hand down; the config CLI
)
LAYER_OF = {room: index for index, rooms in enumerate(LAYERS) for room in rooms}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in (LAYER_PATH / "opsbot").rglob("*.py"):
        parts = path.relative_to(LAYER_PATH).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


MODULES = _modules()


def _imports(tree: ast.Module) -> set[str]:
    """Every opsbot module this module imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("opsbot"):
            candidates = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in MODULES and c != "opsbot"}
    return found


GRAPH = {name: _imports(tree) - {name} for name, tree in MODULES.items()}


def room(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_every_package_has_its_layer():
    rooms = {room(m) for m in MODULES if m != "opsbot"}
    assert rooms - set(LAYER_OF) == set(), "name the new package's layer in LAYERS (and the README's code map)"
    assert set(LAYER_OF) - rooms == set()


def test_no_import_runs_back_up():
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if module != "opsbot" and LAYER_OF[room(target)] > LAYER_OF[room(module)]
    )
    assert upward == []


def test_no_module_imports_itself_round_about():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


def test_the_readme_code_map_lists_the_layers():
    from unit_support import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rooms in LAYERS:
        line = " · ".join(f"`{r}`" for r in rooms)
        assert line in readme, f"the README's layers should list {line}"


def test_packages_below_import_room_by_room_downward():
    """A readable summary when the rules above fail: which rooms each room uses."""
    uses: dict[str, set[str]] = defaultdict(set)
    for module, targets in GRAPH.items():
        for target in targets:
            if room(module) != room(target) and module != "opsbot":
                uses[room(module)].add(room(target))
    assert all(LAYER_OF[used] <= LAYER_OF[user] for user, used_rooms in uses.items() for used in used_rooms)
