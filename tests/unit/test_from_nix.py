"""watchtower fleet import's pure parts: the nix argv, flake references, the merge rule, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchtower.config.from_nix import derive_fleet, eval_argv, flake_ref, merge_fleet
from watchtower.errors import ConfigError


def test_the_evaluation_is_an_argv_list_applying_fleet_from_nixos(tmp_path: Path) -> None:
    argv = eval_argv(f"{tmp_path}#nodes; rm -rf /")
    assert argv[:5] == ["nix", "--extra-experimental-features", "nix-command flakes", "eval",
                        "--json"]
    assert argv[5] == f"{tmp_path}#nodes; rm -rf /"  # one argument, never a shell word
    assert argv[6] == "--apply" and argv[7].lstrip().startswith("# fleetFromNixos")


def test_flake_references(tmp_path: Path) -> None:
    assert flake_ref(str(tmp_path)) == f"{tmp_path}#nixosConfigurations"
    assert flake_ref("github:example/fleet#nodes") == "github:example/fleet#nodes"
    with pytest.raises(ConfigError, match="give a flake path"):
        flake_ref("#nixosConfigurations")


def test_merge_keeps_theirs_and_adds_ours() -> None:
    derived = {"services": [{"name": "a", "kind": "mastodon", "base_url": "https://a/"}],
               "zones": [{"name": "a.test"}]}
    theirs = {"services": [{"name": "a", "probe_account": "w@a.test"},
                           {"name": "b", "kind": "pixelfed", "base_url": "https://b/"}],
              "settings": {"jitter": 1}}
    assert merge_fleet(derived, theirs) == {
        "services": [{"name": "a", "kind": "mastodon", "base_url": "https://a/",
                      "probe_account": "w@a.test"},
                     {"name": "b", "kind": "pixelfed", "base_url": "https://b/"}],
        "zones": [{"name": "a.test"}], "settings": {"jitter": 1}}


def test_a_missing_nix_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        derive_fleet(str(tmp_path), nix=str(tmp_path / "no-nix"))
