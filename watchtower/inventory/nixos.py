"""Facts read from a NixOS host through a Transport, each with the exact argv that produced it.

Everything is a plain command a NixOS host has (nix-env, nix-store, nix, readlink, cat, df,
systemctl), so the same functions serve the local machine, SSH and a throwaway test store (the
host entry's `env` points Nix at it; its paths point at the test profile). Parsing is kept in
small pure functions next to the command, so a format change shows up in one place.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchtower.errors import ProbeError
from watchtower.net.transport import CommandFailed

if TYPE_CHECKING:
    from watchtower.config import Host
    from watchtower.net.transport import Transport

GENERATION_RE = re.compile(r"^\s*(\d+)\s+(\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d)\s*(\(current\))?\s*$")
DF_RE = re.compile(r"^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(.+)$")


# -- generations and the running system -----------------------------------------------------


def parse_generations(text: str) -> list[dict[str, Any]]:
    """`nix-env --list-generations` lines -> [{"number", "date", "current"}], oldest first."""
    out = []
    for line in text.splitlines():
        m = GENERATION_RE.match(line)
        if m:
            out.append({"number": int(m.group(1)), "date": re.sub(r"\s+", " ", m.group(2)),
                        "current": bool(m.group(3))})
    return sorted(out, key=lambda g: g["number"])


def generations(t: Transport, host: Host, timeout: float) -> list[dict[str, Any]]:
    """The system profile's generations with the store path each generation link points at."""
    listing = t.check_output([host.nix_env, "-p", host.profile, "--list-generations"], timeout)
    gens = parse_generations(listing)
    profile = Path(host.profile)
    found = t.run(["find", str(profile.parent), "-maxdepth", "1", "-type", "l",
                   "-name", f"{profile.name}-*-link", "-printf", "%f\\t%l\\n"], timeout)
    targets: dict[int, str] = {}
    for line in found.stdout.splitlines():
        name, _, target = line.partition("\t")
        m = re.fullmatch(re.escape(profile.name) + r"-(\d+)-link", name)
        if m and target:
            targets[int(m.group(1))] = target
    for g in gens:
        g["path"] = targets.get(g["number"])
    return gens


# A constant script; the paths arrive as its positional arguments, never inside the script.
RESOLVE_SCRIPT = 'for p in "$@"; do printf "%s\\t%s\\n" "$p" "$(readlink -e -- "$p")"; done'


def resolve_links(t: Transport, paths: list[str], timeout: float) -> dict[str, str | None]:
    """`readlink -e` of several paths in one command (one SSH round trip, not one per path)."""
    out = t.check_output(["sh", "-c", RESOLVE_SCRIPT, "sh", *paths], timeout)
    resolved: dict[str, str | None] = dict.fromkeys(paths)
    for line in out.splitlines():
        path, _, target = line.rpartition("\t")
        if path in resolved:
            resolved[path] = target or None
    return resolved


def system_state(t: Transport, host: Host, timeout: float) -> dict[str, Any]:
    """Where /run/current-system and /run/booted-system point, their kernels, nixos-version.

    `current` is required (without it this is not a NixOS host we can judge: ProbeError); the
    others are None when absent (a container has no booted system, for instance).
    """
    cur, boot = host.current_system, host.booted_system
    links = resolve_links(t, [cur, boot, f"{cur}/kernel", f"{boot}/kernel", host.profile],
                          timeout)
    current = links[cur]
    if current is None:
        raise ProbeError(f"{cur} does not exist on {t.where}: not a NixOS system (or wrong "
                         "hosts[].current_system)", kind="host")
    try:
        version: str | None = t.read_file(f"{current}/nixos-version", timeout).strip() or None
    except CommandFailed:
        version = None
    return {
        "current": current,
        "booted": links[boot],
        "current_kernel": links[f"{cur}/kernel"],
        "booted_kernel": links[f"{boot}/kernel"] if links[boot] else None,
        "profile": links[host.profile],
        "nixos_version": version,
    }


def closure(t: Transport, host: Host, path: str, timeout: float) -> list[str]:
    """Every store path `path` depends on, itself included (`nix-store -q --requisites`)."""
    out = t.check_output([host.nix_store, "-q", "--requisites", "--", path], timeout)
    return [line.strip() for line in out.splitlines() if line.strip()]


MODIFIED_RE = re.compile(r"path '(.+?)' was modified! expected hash '(.+?)', got '(.+?)'")
WRITABLE_CAP = 200


def parse_modified(text: str) -> list[dict[str, str]]:
    """`nix-store --verify-path` complaints -> [{"path", "expected", "got"}]."""
    return [{"path": m.group(1), "expected": m.group(2), "got": m.group(3)}
            for m in MODIFIED_RE.finditer(text)]


def verify_paths(t: Transport, host: Host, paths: list[str], timeout: float) -> dict[str, Any]:
    """Re-hash `paths` against the store database (`nix-store --verify-path`: exit 1 and one
    "was modified!" line per path whose contents changed since it was registered)."""
    result = t.run([host.nix_store, "--verify-path", "--", *paths], timeout)
    modified = parse_modified(result.stderr + result.stdout)
    other = [line for line in result.stderr.splitlines()
             if line.strip() and "was modified!" not in line][:5]
    return {"rc": result.rc, "modified": modified, "errors": other}


def writable_files(t: Transport, roots: list[str], timeout: float) -> list[str]:
    """Files and directories with a write bit under `roots` (symlinks aside): Nix registers
    store paths read-only (0444/0555), so a write bit means something made it writable."""
    if not roots:
        return []
    result = t.run(["find", *roots, "-perm", "/0222", "!", "-type", "l", "-print"], timeout)
    return [line for line in result.stdout.splitlines() if line.strip()][:WRITABLE_CAP]


def store_path_exists(t: Transport, host: Host, path: str, timeout: float) -> bool:
    """Whether `path` is a valid path of the host's store (`nix-store --check-validity`)."""
    return t.run([host.nix_store, "--check-validity", "--", path], timeout).ok


def diff_closures(t: Transport, host: Host, old: str, new: str, timeout: float) -> str | None:
    """`nix store diff-closures OLD NEW` text where the host's Nix has it, else None."""
    result = t.run([host.nix, "--extra-experimental-features", "nix-command", "store",
                    "diff-closures", old, new], timeout)
    return result.stdout if result.ok else None


# -- units and disks -----------------------------------------------------------------------


def parse_failed_units(text: str) -> list[dict[str, str]]:
    """`systemctl list-units --failed --plain --no-legend` -> [{"unit", "load", "active", ...}]."""
    out = []
    for line in text.splitlines():
        parts = line.lstrip("●* ").split(None, 4)
        if len(parts) >= 4 and "." in parts[0]:
            out.append({"unit": parts[0], "load": parts[1], "active": parts[2],
                        "sub": parts[3], "description": parts[4] if len(parts) > 4 else ""})
    return out


def failed_units(t: Transport, host: Host, timeout: float) -> list[dict[str, str]]:
    out = t.check_output([host.systemctl, "list-units", "--failed", "--all", "--plain",
                          "--no-legend", "--no-pager", "--full"], timeout)
    return parse_failed_units(out)


def parse_df(text: str) -> dict[str, Any] | None:
    """The data line of `df -P -k PATH` -> sizes in bytes and free percent (as df counts it).

    Free space is what an unprivileged writer gets: available / (used + available), the
    complement of df's Capacity column (root's reserved blocks count as neither).
    """
    for line in text.splitlines()[1:]:
        m = DF_RE.match(line)
        if m:
            size, used, avail = (int(m.group(i)) * 1024 for i in (2, 3, 4))
            usable = used + avail
            return {"filesystem": m.group(1), "mount": m.group(6), "size_bytes": size,
                    "used_bytes": used, "avail_bytes": avail,
                    "free_percent": round(100.0 * avail / usable, 2) if usable else 0.0}
    return None


def disk_usage(t: Transport, host: Host, timeout: float) -> list[dict[str, Any]]:
    """Free space of every configured path (default `/` and `/nix`), one `df` per path."""
    out = []
    for path in host.disk_paths:
        result = t.run(["df", "-P", "-k", "--", path], timeout)
        parsed = parse_df(result.stdout) if result.ok else None
        entry: dict[str, Any] = {"path": path}
        if parsed is None:
            entry["problem"] = (result.stderr.strip().splitlines() or [f"df exited {result.rc}"]
                                )[0][:200]
        else:
            entry.update(parsed)
        out.append(entry)
    return out


# -- what is declared ------------------------------------------------------------------------


def expected_system(host: Host) -> tuple[str | None, str | None]:
    """(toplevel store path, where it was declared) from `expected_system` or the manifest.

    A manifest is JSON produced from a flake build, mapping host name -> toplevel path, either
    flat or under "hosts", each value a path or {"toplevel": path}. A manifest that cannot be
    read or lacks the host is a ProbeError: the declaration itself is broken.
    """
    if host.expected_system:
        return host.expected_system, "hosts[].expected_system"
    if not host.manifest:
        return None, None
    try:
        data = json.loads(Path(host.manifest).read_text())
    except (OSError, ValueError) as exc:
        raise ProbeError(f"manifest {host.manifest}: cannot read ({exc})", kind="config") from None
    table = data.get("hosts", data) if isinstance(data, dict) else None
    entry = table.get(host.name) if isinstance(table, dict) else None
    if isinstance(entry, dict):
        entry = entry.get("toplevel")
    if not isinstance(entry, str) or not entry:
        raise ProbeError(f"manifest {host.manifest} has no toplevel path for host {host.name}",
                         kind="config")
    return entry, f"manifest {host.manifest}"
