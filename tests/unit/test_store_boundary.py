"""The storage boundary, read from the source: all persistence lives in watchtower/store/.

Two rules, each one AST scan of the tree (so a new module cannot slip past them):
- no module outside watchtower/store/ imports SQLAlchemy or SQLModel, opens a session or a
  connection (`Session(...)`, `.connect()`, `.begin()`), or reaches for the store's engine
  (`.engine`); what a part of watchtower needs from the database is a method of the `Store`;
- the store imports nothing above it: only its own modules, watchtower.model, watchtower.errors
  and libraries (so its migrations can never depend on a dashboard or an engine module again).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("watchtower", "checks", "remediations", "dashboards")
STORE = ROOT / "watchtower" / "store"
DATABASE_LIBRARIES = ("sqlalchemy", "sqlmodel")
STORE_MAY_IMPORT = ("watchtower.store", "watchtower.model", "watchtower.errors")


def _modules(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(root.rglob("*.py"))


def _outside_store() -> Iterator[Path]:
    for path in _modules(*(ROOT / p for p in PRODUCT)):
        if STORE not in path.parents:
            yield path


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def database_use(source: str) -> list[str]:
    """What in this source touches the database directly (empty when nothing does)."""
    tree = ast.parse(source)
    found = [f"{line}: imports {name}" for line, name in _imported(tree)
             if name.split(".")[0] in DATABASE_LIBRARIES]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "Session":
                found.append(f"{node.lineno}: opens a Session")
            elif (isinstance(func, ast.Attribute) and func.attr in ("connect", "begin")
                  and not node.args and not node.keywords):
                found.append(f"{node.lineno}: opens a connection (.{func.attr}())")
        elif isinstance(node, ast.Attribute) and node.attr == "engine":
            found.append(f"{node.lineno}: uses a database engine (.engine)")
    return found


def upward_imports(source: str) -> list[str]:
    """watchtower modules this store source imports that lie above the store."""
    return [f"{line}: imports {name}" for line, name in _imported(ast.parse(source))
            if name.split(".")[0] == "watchtower"
            and not any(name == m or name.startswith(m + ".") for m in STORE_MAY_IMPORT)]


def test_nothing_outside_the_store_touches_the_database() -> None:
    offenders = {}
    for path in _outside_store():
        found = database_use(path.read_text())
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}, "persistence belongs in watchtower/store/ (a Store method)"


def test_the_store_imports_nothing_above_it() -> None:
    offenders = {}
    for path in _modules(STORE):
        found = upward_imports(path.read_text())
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_scans_see_what_they_look_for() -> None:
    """The rules are not vacuous: each catches the shapes it names, and leaves alone what
    only looks alike (a socket's connect(address), a module named engine)."""
    assert len(database_use(
        "from sqlmodel import Session\nimport sqlalchemy.exc\n"
        "with Session(store.engine) as s: pass\n"
        "with engine.connect() as c: pass\nwith engine.begin() as c: pass\n")) == 6
    assert database_use("sock.connect((host, port))\n"
                        "from watchtower.remediation.engine import Remediator\n"
                        "store.begin_sweep('x', 1)\n") == []
    assert upward_imports("from watchtower.dashboards import tables\n"
                          "import watchtower.config\n") == [
        "1: imports watchtower.dashboards", "2: imports watchtower.config"]
    assert upward_imports("from watchtower.store.db import Database\n"
                          "from watchtower.model import Result\nimport sqlalchemy\n") == []
