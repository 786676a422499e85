"""The Nix files parse, the module options match the README and the config model, and the
example settings are a valid fleet file (Debian's nix-bin; nixpkgs cannot be fetched here)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.servers.base import require
from watchtower.config import Settings, parse_fleet
from watchtower.probe import registry

ROOT = Path(__file__).resolve().parents[3]
NIX_FILES = sorted([ROOT / "flake.nix", *(ROOT / "nix").glob("*.nix"),
                    *(ROOT / "tests").rglob("*.nix")])


def nix_instantiate(*args: str) -> str:
    require("nix-instantiate", why="parses the flake and module")
    proc = subprocess.run(["nix-instantiate", *args], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nix_file_parses(path: Path) -> None:
    nix_instantiate("--parse", str(path))


def options(module: str) -> list[str]:
    out = nix_instantiate("--eval", "--strict", "--json", "tests/integration/nix/options.nix",
                          "--arg", "module", f"./{module}")
    return list(json.loads(out))


def test_every_module_option_is_documented_and_every_documented_option_exists() -> None:
    declared = set(options("nix/module.nix")) | set(options("nix/target-module.nix"))
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(services\.watchtower(?:-target)?\.[A-Za-z.]+)`", readme))
    top_level = {o for o in declared if ".settings.settings." not in o}
    assert top_level - documented == set(), "options missing from the README"
    assert documented - declared == set(), "README documents options the module lacks"


def test_typed_settings_keys_exist_in_the_config_model() -> None:
    declared = options("nix/module.nix")
    keys = {o.rsplit(".", 1)[1] for o in declared if ".settings.settings." in o}
    assert keys and keys <= set(Settings.model_fields)


def test_example_settings_render_to_a_valid_fleet_file() -> None:
    data = json.loads(nix_instantiate("--eval", "--strict", "--json",
                                      "nix/example-settings.nix"))
    fleet = parse_fleet(data, "nix/example-settings.nix", registry.check_ids_and_families(),
                        check_secrets=False)
    assert fleet.zones and fleet.services


def test_package_builds_from_the_pyproject_version() -> None:
    text = (ROOT / "nix" / "package.nix").read_text()
    assert "builtins.fromTOML (builtins.readFile ../pyproject.toml)" in text
    assert 'pythonImportsCheck = [ "watchtower" "watchtower.checks" "watchtower.remediations" ]' in text
