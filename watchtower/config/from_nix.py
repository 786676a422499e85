"""The fleet file from a flake's NixOS configurations (`watchtower fleet import`).

For operators whose monitor is not NixOS: the fleet they already declare in Nix (which services
run where, under which names) becomes the fleet file without writing it twice. `nix eval --json`
applies nix/fleet-from-nixos.nix (the same function the flake exposes as
`lib.fleetFromNixos`) to `PATH#ATTR`, so the flake needs no watchtower input. An existing fleet
file wins over what is derived, entry by entry (`merge_fleet`, the rule of nix/fleet-merge.nix).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from watchtower.errors import ConfigError

DEFAULT_ATTR = "nixosConfigurations"
FLAKE_FEATURES = "nix-command flakes"
EVAL_TIMEOUT = 600.0


FUNCTION_FILE = "fleet-from-nixos.nix"


def fleet_function() -> str:
    """The text of nix/fleet-from-nixos.nix: installed as package data of `watchtower.nix`
    (pyproject maps nix/ there), or beside the package in a source checkout."""
    try:
        return resources.files("watchtower.nix").joinpath(FUNCTION_FILE).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        for parent in Path(__file__).resolve().parents:
            candidate = parent / "nix" / FUNCTION_FILE
            if candidate.is_file():
                return candidate.read_text()
        raise ConfigError([f"{FUNCTION_FILE} not found (reinstall watchtower)"]) from None


def flake_ref(flake: str) -> str:
    """PATH[#ATTR] -> an installable; a local directory becomes an absolute path."""
    path, _, attr = flake.partition("#")
    if not path:
        raise ConfigError([f"--flake {flake!r}: give a flake path or reference before '#'"])
    if "://" not in path and ":" not in path.split("/", 1)[0] and Path(path).exists():
        path = str(Path(path).resolve())
    return f"{path}#{attr or DEFAULT_ATTR}"


def eval_argv(flake: str, nix: str = "nix") -> list[str]:
    """The argv of the evaluation (a list: no shell ever sees the flake reference)."""
    return [nix, "--extra-experimental-features", FLAKE_FEATURES, "eval", "--json",
            flake_ref(flake), "--apply", fleet_function()]


def derive_fleet(flake: str, nix: str = "nix", timeout: float = EVAL_TIMEOUT) -> dict[str, Any]:
    """Evaluate the flake's configurations into a fleet document (a dict ready for TOML)."""
    if shutil.which(nix) is None:
        raise ConfigError([f"{nix}: not found (install Nix; Debian: nix-bin)"])
    argv = eval_argv(flake, nix)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        raise ConfigError([f"nix eval {flake_ref(flake)}: no answer in {timeout:.0f} s"]) from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-12:])
        raise ConfigError([f"nix eval {flake_ref(flake)} failed (exit {proc.returncode}):\n{tail}"])
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"nix eval {flake_ref(flake)}: not JSON ({exc})"]) from None
    if not isinstance(doc, dict):
        raise ConfigError([f"nix eval {flake_ref(flake)}: expected an attribute set of "
                           "NixOS configurations"])
    return doc


def _named(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(e, dict) and "name" in e for e in value))


def merge_fleet(derived: Any, operator: Any) -> Any:
    """Derived under the operator's: tables key by key, named-table lists by `name`, their
    values win; the same rule as nix/fleet-merge.nix."""
    if isinstance(derived, dict) and isinstance(operator, dict):
        out = dict(derived)
        for key, value in operator.items():
            out[key] = merge_fleet(derived[key], value) if key in derived else value
        return out
    if _named(derived) and _named(operator):
        theirs = {e["name"]: e for e in operator}
        ours = {e["name"] for e in derived}
        merged = [merge_fleet(e, theirs[e["name"]]) if e["name"] in theirs else e
                  for e in derived]
        return merged + [e for e in operator if e["name"] not in ours]
    return operator


def render(doc: dict[str, Any]) -> str:
    return tomli_w.dumps(doc)


def diff(old_text: str, new_text: str, path: str) -> str:
    return "".join(difflib.unified_diff(old_text.splitlines(keepends=True),
                                        new_text.splitlines(keepends=True),
                                        fromfile=path, tofile=f"{path} (merged)"))


Known = Iterable[tuple[str, str]] | None


def _checked(doc: dict[str, Any], source: str, known: Known) -> None:
    """The fleet must validate before anything is written (secrets are read on the monitor)."""
    from watchtower.config import parse_fleet

    parse_fleet(doc, source, known, check_secrets=False)


def _read_fleet(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{path}: not a TOML fleet file ({exc})"]) from None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def import_fleet(flake: str, out: Path | None, *, merge: bool = False, nix: str = "nix",
                 known: Known = None) -> str:
    """`watchtower fleet import`: print the derived fleet, write it to a new file, or show
    what merging it into an existing file changes (and merge with `merge=True`; the old file
    is kept beside it as <name>.orig, since TOML comments do not survive the rewrite).
    `known`: the check ids and families the result is validated against."""
    derived = derive_fleet(flake, nix)
    if out is None:
        _checked(derived, flake_ref(flake), known)
        return render(derived)
    if not out.exists():
        _checked(derived, flake_ref(flake), known)
        _write(out, render(derived))
        entries = sum(len(v) for v in derived.values())
        return f"wrote {out} ({entries} entries from {flake_ref(flake)})"
    existing = _read_fleet(out)
    merged = merge_fleet(derived, existing)
    _checked(merged, f"{out} (merged)", known)
    changes = diff(render(existing), render(merged), str(out))
    if not changes:
        return f"{out}: nothing to add from {flake_ref(flake)}"
    if not merge:
        return changes + f"\n{out} unchanged; run again with --merge to write this.\n"
    backup = out.with_name(out.name + ".orig")
    shutil.copy2(out, backup)
    _write(out, render(merged))
    return changes + f"\nwrote {out}; the previous file is {backup}\n"
