"""Every package folder is installed, and under the watchtower namespace only."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    mapping = conf["package-dir"]
    found = set()
    for prefix, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            name = ".".join([prefix, *rel.parts]) if rel.parts else prefix
            if name.startswith("watchtower.checks") and prefix == "watchtower":
                continue
            found.add(name)
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"
    assert all(name.startswith("watchtower") for name in listed)
