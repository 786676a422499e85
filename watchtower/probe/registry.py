"""The one registry of checks and remediations.

Built-in check families live in `checks/` (installed as `watchtower.checks`) and register with
`@register` when their module is imported; `BUILTIN_CHECK_MODULES` lists them, so adding a family
is adding one line. Third-party packages add modules through the `watchtower.checks` and
`watchtower.remediations` entry-point groups.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

from watchtower.probe.api import Check

if TYPE_CHECKING:
    from watchtower.config import Fleet

Validator = Callable[["Fleet"], list[str]]

log = logging.getLogger(__name__)

BUILTIN_CHECK_MODULES = (
    "watchtower.checks.dns",
    "watchtower.checks.web",
    "watchtower.checks.fedi",
    "watchtower.checks.queues",
    "watchtower.checks.backup",
    "watchtower.checks.heartbeat",
    "watchtower.checks.matrix",
    "watchtower.checks.matrix_federation",
    "watchtower.checks.storage",
    "watchtower.checks.mail",
    "watchtower.checks.drift",
    "watchtower.checks.host",
    "watchtower.checks.dns_declared",
    "watchtower.checks.tls_ncsc",
)
BUILTIN_REMEDIATION_MODULES: tuple[str, ...] = (
    "watchtower.remediations.nixos",
    "watchtower.remediations.systemd",
    "watchtower.remediations.nixgc",
    "watchtower.remediations.dnsrecords",
)

_checks: dict[str, type[Check]] = {}
_remediations: dict[str, type[Any]] = {}
_validators: list[Validator] = []
_loaded = False
_lock = threading.Lock()

C = TypeVar("C", bound=type[Check])
R = TypeVar("R", bound=type[Any])


def register(cls: C) -> C:
    """Class decorator: add a check to the registry under its catalog id."""
    cid = cls.meta.id
    existing = _checks.get(cid)
    if existing is not None and existing is not cls:
        raise ValueError(f"check id {cid!r} registered twice ({existing.__module__}, "
                         f"{cls.__module__})")
    _checks[cid] = cls
    return cls


def register_validator(fn: Validator) -> Validator:
    """Function decorator: a check of the fleet file against this machine that a part of
    watchtower knows how to make (an octoDNS repository and config exist); it returns one
    `key: why` line per problem. The loader runs them with the secrets check (so not for a
    file validated for another machine), without importing the parts that declare them."""
    if fn not in _validators:
        _validators.append(fn)
    return fn


def validators() -> list[Validator]:
    load()
    return list(_validators)


def register_remediation(cls: R) -> R:
    rid = cls.meta.id
    existing = _remediations.get(rid)
    if existing is not None and existing is not cls:
        raise ValueError(f"remediation id {rid!r} registered twice")
    _remediations[rid] = cls
    return cls


def load() -> None:
    """Import built-in and entry-point modules once; a broken plugin is logged, not fatal."""
    global _loaded
    with _lock:
        if _loaded:
            return
        for name in BUILTIN_CHECK_MODULES + BUILTIN_REMEDIATION_MODULES:
            importlib.import_module(name)
        for group in ("watchtower.checks", "watchtower.remediations"):
            for ep in entry_points(group=group):
                try:
                    ep.load()
                except Exception as exc:  # a third-party plugin must not take watchtower down
                    log.error("plugin %s (%s) failed to load: %s", ep.name, ep.value, exc)
        _loaded = True


def checks() -> dict[str, Check]:
    """Every registered check, instantiated, by id (sorted)."""
    load()
    return {cid: _checks[cid]() for cid in sorted(_checks)}


def check_ids_and_families() -> list[tuple[str, str]]:
    load()
    return [(cid, cls.meta.family) for cid, cls in sorted(_checks.items())]


def remediations() -> dict[str, type[Any]]:
    load()
    return dict(sorted(_remediations.items()))


def fixes(fleet: Fleet | None = None) -> dict[str, tuple[str, ...]]:
    """Check id -> the ids of the remediations that can fix its failure, derived from the
    remediations' triggers alone (`Remediation.triggers`): what reports, the dashboard and
    `watchtower checks` show is what the engine would run."""
    from watchtower.config import Fleet as FleetModel

    fleet = fleet if fleet is not None else FleetModel()
    out: dict[str, list[str]] = {}
    for rid, cls in remediations().items():
        for check_id in cls.triggers(fleet):
            out.setdefault(check_id, []).append(rid)
    return {cid: tuple(sorted(rids)) for cid, rids in sorted(out.items())}


def load_fleet_file(path: str) -> Fleet:
    """A fleet file validated against everything registered: the check ids and families its
    overrides may name, and the validators of this machine. What the CLI, the daemon's reload
    and the dashboard load."""
    from watchtower.config import load_fleet

    return load_fleet(path, check_ids_and_families(), validators())
