"""nix/package.nix lists every runtime dependency of pyproject.toml (by nixpkgs name)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NIX_NAME = {"prometheus-client": "prometheus-client", "tomli-w": "tomli-w",
            # nixpkgs has octoDNS as an application: package.nix turns it into a module
            "octodns": "octodns-module", "ruamel.yaml": "ruamel-yaml"}


def test_every_runtime_dependency_is_in_the_nix_package() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0].lower() for d in deps}
    nix = (ROOT / "nix" / "package.nix").read_text()
    block = nix.split("dependencies = with python3Packages; [", 1)[1].split("];", 1)[0]
    listed = set(block.split())
    missing = {n for n in names if NIX_NAME.get(n, n) not in listed}
    assert not missing, f"add to nix/package.nix dependencies: {sorted(missing)}"
