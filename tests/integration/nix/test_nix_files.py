"""The Nix files parse, the module options match the README and the config model, and the
example settings are a valid fleet file (Debian's nix-bin; the modules are evaluated by the real
module system in test_nix_modules.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.nix.nixeval import ROOT, NixEval
from watchtower.config import Fleet, parse_fleet
from watchtower.probe import registry

NIX_FILES = sorted([ROOT / "flake.nix", *(ROOT / "nix").glob("*.nix"),
                    *(ROOT / "tests").rglob("*.nix")])


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nix_file_parses(nixeval: NixEval, path: Path) -> None:
    nixeval.instantiate("--parse", str(path))


def test_every_module_option_is_documented_and_every_documented_option_exists(
        nixeval: NixEval) -> None:
    declared = set(nixeval.modules()["options"])
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(services\.watchtower(?:-target)?\.[A-Za-z.]+)`", readme))
    top_level = {o for o in declared if ".settings." not in o}
    assert top_level - documented == set(), "options missing from the README"
    assert documented - declared == set(), "README documents options the module lacks"


def test_typed_settings_keys_exist_in_the_config_model(nixeval: NixEval) -> None:
    """Every typed key under services.watchtower.settings (e.g. `store.database`) names a
    table of the fleet file and a key of it."""
    declared = nixeval.modules()["options"]
    typed = [o.split(".settings.", 1)[1] for o in declared
             if o.startswith("services.watchtower.settings.")]
    assert typed
    for path in typed:
        table, key = path.split(".")
        section = Fleet.model_fields[table].annotation
        assert key in section.model_fields, path  # type: ignore[union-attr]


def test_example_settings_render_to_a_valid_fleet_file(nixeval: NixEval) -> None:
    data = json.loads(nixeval.instantiate("--eval", "--strict", "--json",
                                          str(ROOT / "nix" / "example-settings.nix")))
    fleet = parse_fleet(data, "nix/example-settings.nix", registry.check_ids_and_families(),
                        check_secrets=False)
    assert fleet.zones and fleet.services


def test_package_builds_from_the_pyproject_version() -> None:
    text = (ROOT / "nix" / "package.nix").read_text()
    assert "builtins.fromTOML (builtins.readFile ../pyproject.toml)" in text
    assert 'pythonImportsCheck = [ "watchtower" "watchtower.checks" "watchtower.remediations" ]' in text
