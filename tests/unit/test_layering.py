"""The layout's import rules (docs/architecture.md): each room of watchtower imports only the
rooms below it, so no two rooms depend on each other and the bottom layers stay free of what
is built on them. Imports under TYPE_CHECKING and inside functions count too: a lazy import
is still a dependency."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: package -> its folder in the repository (checks/, remediations/, dashboards/ install under
#: watchtower.*)
FOLDERS = {"watchtower": "watchtower", "watchtower.checks": "checks",
           "watchtower.remediations": "remediations", "watchtower.dashboards": "dashboards"}

#: Rooms bottom-up: a room may import the rooms listed before it (and itself), nothing after.
#: `base` is watchtower.model, watchtower.errors, watchtower.quiet (the warning filters the
#: package's __init__ installs) and the package's __init__.
LAYERS: list[tuple[str, ...]] = [
    ("base",),
    ("parsers",),
    ("net",),
    ("config",),
    ("store",),
    ("inventory",),
    ("probe",),
    ("compliance",),
    ("checks", "dnsdecl"),
    ("alerting",),
    ("report",),
    ("metrics",),
    ("remediation",),
    ("remediations",),
    ("scaleout",),
    ("daemon",),
    ("dashboards",),
    ("lab",),
    ("cli",),
]
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}
#: Rooms that share a layer may import each other in this direction only.
SAME_LAYER = {("checks", "dnsdecl")}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("model", "errors", "quiet"):
        return "base"
    return parts[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {name for name in found if name.startswith("watchtower")}


def test_every_room_has_a_layer() -> None:
    rooms = {room(m) for m in _modules()}
    assert rooms <= set(RANK), f"rooms without a layer: {sorted(rooms - set(RANK))}"


def test_no_room_imports_one_above_it() -> None:
    modules = _modules()
    upward = []
    for name, path in sorted(modules.items()):
        mine = room(name)
        for target in _imports(path):
            if target not in modules:
                continue
            theirs = room(target)
            if theirs == mine or RANK[theirs] < RANK[mine] or (mine, theirs) in SAME_LAYER:
                continue
            upward.append(f"{name} -> {target}")
    assert upward == [], "imports that run upward:\n" + "\n".join(upward)


def _runtime_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules `name` imports when it runs (at its top or in a function body), relative
    imports resolved; `if TYPE_CHECKING:` blocks left out (they never run), and `from pkg import
    submodule` counted as the submodule alone (it does not need pkg's own names)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level \
                else node.module or ""
            subs = {f"{module}.{a.name}" for a in node.names} & modules.keys()
            found |= subs if len(subs) == len(node.names) else {module, *subs}
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return (found & modules.keys()) - {name}


def test_no_import_cycles_between_modules() -> None:
    """Not even through a function-level import: a lazy import that closes a cycle hides a
    design knot (heartbeats <-> facade, tlsscan <-> _sslyze_steps were untied this way)."""
    modules = _modules()
    graph = {name: _runtime_imports(name, path, modules) for name, path in modules.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None
