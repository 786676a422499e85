"""nix/package.nix lists every runtime dependency of pyproject.toml (by nixpkgs name)."""

from __future__ import annotations

import json
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


VERSIONS = ROOT / "nix" / "nixpkgs-versions.json"


def _package_attrs() -> set[str]:
    nix = (ROOT / "nix" / "package.nix").read_text()
    block = nix.split("dependencies = with python3Packages; [", 1)[1].split("];", 1)[0]
    return {w for line in block.splitlines() for w in line.split("#", 1)[0].split()}


def _lower_bounds() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {}
    for dep in deps:
        name = re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower()
        m = re.search(r">=\s*([0-9][^,;\s]*)", dep)
        if m:
            bounds[NIX_NAME.get(name, name)] = m.group(1)
    return bounds


def test_the_versions_file_covers_the_package_and_the_pinned_channel() -> None:
    data = json.loads(VERSIONS.read_text())
    flake = (ROOT / "flake.nix").read_text()
    assert f'"github:NixOS/nixpkgs/{data["channel"]}"' in flake, "flake pin and data differ"
    assert set(data["packages"]) == _package_attrs()


def test_every_recorded_version_meets_the_pyproject_lower_bound() -> None:
    from packaging.version import Version

    data = json.loads(VERSIONS.read_text())
    bounds = _lower_bounds()
    for attr, entry in data["packages"].items():
        # python3Packages.ATTR lives in python-modules/ATTR; applications nixpkgs keeps
        # under pkgs/by-name (octoDNS and its providers) say so in a note.
        assert entry["path"] == f"pkgs/development/python-modules/{attr}/default.nix" or (
            entry["path"].startswith("pkgs/by-name/") and entry.get("note")), attr
        if entry["version"] is None:
            # Not silently: the file says why it could not be read, with the revision unknown.
            assert data["revision"] is None and data["unverified"], attr
            continue
        if attr in bounds:
            assert Version(entry["version"]) >= Version(bounds[attr]), (attr, entry, bounds[attr])
