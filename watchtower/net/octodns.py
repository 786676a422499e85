"""octoDNS as a library: what it would change on a zone's target provider, and the sync itself.

A zone kept as code is in its declared state when octoDNS has nothing to do, so octoDNS itself
is asked (its Manager, the operator's own config file, providers and processors) instead of a
second implementation of its rules. A plan is `Manager.sync` with `dry_run=True`: it never
applies (octoDNS returns before its apply loop), and `force=True` only means an unsafe plan
(too many updates or deletes, a root NS change) is still shown instead of raising. The plan is
captured by a plan output of our own, octoDNS's documented extension point for reading plans.

Relative YAML `directory` values are read from the repository work tree (octoDNS takes them
from the directory `octodns-sync` runs in, which is the work tree by convention): the provider
objects get the absolute path, never the process's working directory (shared by threads).
Each call is bounded: the target provider's HTTP timeout is lowered to `timeout`, and the call
runs in a worker thread. A plan is abandoned at its deadline (it changes nothing). A sync is
not: it may be applying, and a sync reported failed while it goes on would race the undo the
remediation engine runs next. So a sync past its deadline is waited for (SYNC_WAIT_FACTOR
times longer; its provider calls are each bounded) and its late result is the truth; past that
it is reported as still running, and syncs of one zone never overlap (the next one, an undo's
included, waits for it).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from typing import Any

from watchtower.errors import ProbeError, ProbeTimeout

YAML_PROVIDERS = ("octodns.provider.yaml.YamlProvider",)
#: How much longer than its timeout a sync is waited for before it is reported still running.
SYNC_WAIT_FACTOR = 4

log = logging.getLogger(__name__)
_zone_locks: dict[tuple[str, str], threading.Lock] = {}
_zone_locks_guard = threading.Lock()


class _Capture:
    """A plan output (octoDNS calls `run(plans=..., log=..., fh=...)`) that keeps the plans."""

    def __init__(self) -> None:
        self.plans: list[tuple[Any, Any]] = []

    def run(self, plans: list[tuple[Any, Any]], **_kwargs: Any) -> None:
        self.plans = list(plans)


def _values(record: Any) -> list[str]:
    """A record's values in presentation form (TXT quoted, `\\;` unescaped)."""
    if record is None:
        return []
    return [v.to_rdata_text() if hasattr(v, "to_rdata_text") else str(v)
            for v in getattr(record, "values", [getattr(record, "value", None)])
            if v is not None]


def change_json(change: Any) -> dict[str, Any]:
    """One octoDNS change as evidence: create (the server lacks it), update (differs), delete
    (the server has it, the YAML does not)."""
    record = change.record
    return {"action": type(change).__name__.lower(), "name": record.fqdn, "type": record._type,
            "ttl": change.new.ttl if change.new is not None else None,
            "values": _values(change.new),
            "existing_ttl": change.existing.ttl if change.existing is not None else None,
            "existing_values": _values(change.existing)}


def _manager(config: str, workdir: str, target: str, timeout: float) -> Any:
    try:
        from octodns.manager import Manager
    except ImportError as exc:  # pragma: no cover - octodns is a runtime dependency
        raise ProbeError(f"octoDNS is not installed ({exc})", kind="input") from exc
    try:
        manager = Manager(config)
    except Exception as exc:  # octoDNS raises many types for a bad config or secret
        raise ProbeError(f"octoDNS config {config}: {type(exc).__name__}: {exc}",
                         kind="input") from exc
    for provider in manager.providers.values():
        directory = getattr(provider, "directory", None)
        if isinstance(directory, str) and not os.path.isabs(directory):
            provider.directory = os.path.join(workdir, directory)
    if target not in manager.providers:
        raise ProbeError(f"octoDNS config {config}: no provider {target!r}", kind="input")
    provider = manager.providers[target]
    if isinstance(getattr(provider, "timeout", None), int | float):
        provider.timeout = min(float(provider.timeout), timeout)
    return manager


def _sync(config: str, workdir: str, zone: str, target: str, timeout: float,
          doit: bool) -> tuple[int, list[dict[str, Any]]]:
    manager = _manager(config, workdir, target, timeout)
    capture = _Capture()
    manager.plan_outputs = {"watchtower": capture}
    try:
        applied = manager.sync(eligible_zones=[zone], eligible_targets=[target],
                               dry_run=not doit, force=not doit)
    except Exception as exc:  # an API that refuses, a YAML that does not load, UnsafePlan
        raise ProbeError(f"octoDNS {'sync' if doit else 'plan'} of {zone} to {target}: "
                         f"{type(exc).__name__}: {exc}", kind="api") from exc
    changes = [change_json(c) for _target, plan in capture.plans for c in plan.changes]
    return int(applied or 0), changes


def _serialised(config: str, workdir: str, zone: str, target: str, timeout: float,
                doit: bool) -> tuple[int, list[dict[str, Any]]]:
    """A sync of a zone, after any earlier sync of it (from this process) has ended."""
    with _zone_locks_guard:
        lock = _zone_locks.setdefault((os.path.abspath(config), zone), threading.Lock())
    with lock:
        return _sync(config, workdir, zone, target, timeout, doit)


def _bounded(timeout: float, config: str, workdir: str, zone: str, target: str, doit: bool
             ) -> tuple[int, list[dict[str, Any]]]:
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="octodns")
    future = pool.submit(_serialised if doit else _sync, config, workdir, zone, target,
                         timeout, doit)
    try:
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            if not doit:
                raise ProbeTimeout(f"octoDNS did not finish within {timeout:g}s") from None
        log.warning("octoDNS sync of %s to %s is past its %gs; waiting for it (it may be "
                    "applying)", zone, target, timeout)
        try:
            return future.result(timeout=timeout * (SYNC_WAIT_FACTOR - 1))
        except concurrent.futures.TimeoutError:
            raise ProbeTimeout(
                f"octoDNS sync of {zone} to {target} still running after "
                f"{timeout * SYNC_WAIT_FACTOR:g}s: its changes may yet land; the next sync of "
                f"this zone waits for it") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def plan(config: str, workdir: str, zone: str, target: str, timeout: float
         ) -> list[dict[str, Any]]:
    """What `octodns-sync` would change on `target` for `zone` (nothing is applied)."""
    return _bounded(timeout, config, workdir, zone, target, False)[1]


def sync(config: str, workdir: str, zone: str, target: str, timeout: float
         ) -> tuple[int, list[dict[str, Any]]]:
    """`octodns-sync --doit` of `zone` to `target` only: (changes applied, the changes).
    octoDNS's safety thresholds hold (an unsafe plan is refused, never forced)."""
    return _bounded(timeout, config, workdir, zone, target, True)
