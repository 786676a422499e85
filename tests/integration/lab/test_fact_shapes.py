"""Fixture facts have the shape `gather` really produces.

The fixtures under tests/fixtures/checks are judged without a network, so nothing else ties them
to what the checks' `gather` returns: a fixture that spells a key `status_code` where gather says
`status` keeps passing while testing nothing. This test records `gather` for every check against
two labs (the demo, and one with every lab fault switched on somewhere), and every fixture case's
facts must fit the recorded shape: each key path was seen, with a type that was seen there.

A key path that only a branch the lab cannot produce reaches (a timeout, a malformed server) is
listed in `UNRECORDED` with the reason; the test fails when such an entry is recorded after all,
so the list only shrinks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from watchtower.checks.common import Failure

from watchtower.config import Fleet, load_fleet
from watchtower.lab import Lab
from watchtower.lab.faults import applies_to
from watchtower.lab.fleet import FAULTS, build_domains
from watchtower.model import Target
from watchtower.probe import registry
from watchtower.probe.api import OBSERVED_AT, Check, Facts
from watchtower.probe.clients import SweepClients

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checks"
EVERY_FAULT_DOMAINS = 20
#: Checks that scan every protocol version and cipher (sslyze, seconds a target): the demo lab
#: records their shapes, its certificate faults included, and the fault lab leaves them out.
SCANNING = frozenset({"web.tls.ncsc", "web.tls.version", "mail.starttls.ncsc"})
GATHER_SECONDS = 8.0

#: Shape: a JSON value's kind ("dict", "list", "str", "number", "bool", "null"); dicts map key ->
#: shape of the values seen under it, lists carry the shape of their items.
Shape = dict[str, Any]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    kinds: dict[type, str] = {dict: "dict", list: "list", tuple: "list", str: "str"}
    return kinds.get(type(value), "other")


def record(shape: Shape, value: Any) -> Shape:
    """Fold `value` into `shape` (the union of everything seen at this path)."""
    shape.setdefault("kinds", set()).add(_kind(value))
    if isinstance(value, dict):
        keys = shape.setdefault("keys", {})
        for key, item in value.items():
            record(keys.setdefault(str(key), {}), item)
    elif isinstance(value, list | tuple):
        items = shape.setdefault("items", {})
        for item in value:
            record(items, item)
    return shape


#: Keys any step's facts may carry: the shared failure facts (checks.common.Failure), written
#: wherever a step could not observe, a branch most servers in the labs never take.
FAILURE_KEYS = frozenset(Failure.__annotations__) | {"problem"}  # + checks.common.fetch's

#: Paths whose dicts are maps keyed by data (header names, addresses, key ids, extension names)
#: or documents a server sent: their keys are not gather's to shape.
MAP_SUFFIXES = (".headers", ".reach", ".capabilities", ".capabilities_before_tls",
                ".signatures", ".verify_keys", ".forward")


def misfits(shape: Shape, value: Any, path: str = "") -> Iterator[str]:
    """Key paths of `value` that `shape` never saw, or saw holding another kind of value.

    `null` fits anywhere (gather writes None for "not observed"), and so does anything where
    the labs only ever saw null or an empty dict or list."""
    if path.endswith(".json"):
        return  # a document the server sent, any JSON at all
    kind, seen = _kind(value), shape.get("kinds", set())
    if kind != "null" and seen - {"null"} and kind not in seen:
        yield f"{path or '.'}: {kind}, recorded {sorted(seen)}"
        return
    if path.endswith(MAP_SUFFIXES):
        return
    if isinstance(value, dict) and shape.get("keys"):
        for key, item in value.items():
            if (key == OBSERVED_AT and not path) or key in FAILURE_KEYS:
                continue
            sub = shape["keys"].get(str(key))
            if sub is None:
                yield f"{path}.{key}: never recorded"
            else:
                yield from misfits(sub, item, f"{path}.{key}")
    elif isinstance(value, list) and shape.get("items", {}).get("kinds"):
        for item in value:
            yield from misfits(shape["items"], item, f"{path}[]")


#: Fixture key paths the labs cannot produce, per check, with the branch that writes them.
_SIGNING = "a signing key in the fleet (authorized fetch probing)"
_NEVER_ARRIVES = "a probe message that never arrives"
_SSH_DOWN = "the mail host unreachable over SSH while DKIM is compared"
_NO_FEED = "the labs configure no release feed ([feeds] release)"
_BY_SRV = "delegation by SRV (the lab delegates by .well-known)"
UNRECORDED: dict[str, dict[str, str]] = {
    "dns.caa": {".hosts[].tls_error": "a web host whose TLS handshake fails while CAA is read"},
    "dns.dnssec.valid": {".links[].ds_error": "the parent's DS query fails (SERVFAIL/timeout)"},
    "drift.advisories": dict.fromkeys((".system", ".nixos_version", ".packages", ".advisories", ".whitelist_entries"), "the labs configure no advisory feed ([feeds] advisories); " "tests/unit/drift/test_advisories.py covers that gather"),
    "drift.version": {
        ".upstream": _NO_FEED,
        ".upstream_problem": _NO_FEED,
        ".closure_version": "a NixOS host whose closure differs from the running service",
    },
    "fedi.actor": dict.fromkeys((".signed_as", ".signed_actor"), _SIGNING),
    "fedi.authorized-fetch": dict.fromkeys((".signed_as", ".signed_status", ".signed_refusal"),
                                           _SIGNING),
    "mail.dane": {".hosts[].smtp_error": "an MX with TLSA records that refuses SMTP"},
    "mail.dkim.key-match": {
        ".keys[].host_error": _SSH_DOWN,
        ".keys[].host_error_kind": _SSH_DOWN,
        ".keys[].published_error": "the selector's TXT query fails (SERVFAIL/timeout)",
    },
    "mail.imap": {".ports[].capabilities_before_tls": "a STARTTLS port (the lab has IMAPS only)"},
    "mail.roundtrip": {".fetch.waited_seconds": _NEVER_ARRIVES},
    "mail.sieve": {".delivery.fetch.waited_seconds": _NEVER_ARRIVES},
    "mail.spam-filter": {
        ".controller": "a Rspamd controller; tests/integration/mailflow/test_fullstack.py",
        ".fetch.waited_seconds": _NEVER_ARRIVES,
    },
    "matrix.discovery": {
        ".address_problem": "a delegated host without an address record",
        ".srv": _BY_SRV,
        ".srv_target_cname": _BY_SRV,
    },
    "storage.health": {".cluster.v2_answer": "a Garage older than the v2 admin API (v1 fallback)"},
    "web.https.redirect": {".refused": "plain HTTP refused (the lab's redirector always answers)"},
    "web.tls.ncsc": {
        **{f".scan.ocsp.{key}": "a stapled OCSP response (the lab staples none)"
           for key in ("response_status", "cert_status", "next_update", "signature", "valid")},
        ".tls_error": "a server sslyze cannot connect to at all",
    },
}


#: Checks the labs give no target to: their fixtures cannot be compared here, and each reason
#: names where their facts are tested against a real server instead.
NOT_IN_THE_LAB: dict[str, str] = {
    "dns.octodns": "needs an octoDNS config; tests/integration/declared/test_octodns_pdns.py",
    "drift.generation": "needs a NixOS host; tests/integration/drift/test_host_checks.py",
    "drift.reboot": "needs a NixOS host; tests/integration/drift/test_host_checks.py",
    "host.store-integrity": "needs a NixOS host; tests/integration/drift/test_host_checks.py",
    "host.units": "needs systemd as PID 1; tests/integration/remediation/test_restart_and_gc.py",
    "mail.dnsbl": "needs a DNSBL zone; tests/integration/mail/test_mail_records.py",
    "mail.parked": "needs a parked domain; tests/integration/mail/test_mail_records.py",
    "matrix.federation.outbound": "needs Synapse; tests/integration/matrix/test_matrix_checks.py",
    "storage.roundtrip": "needs S3 credentials; tests/integration/storage/test_storage_checks.py",
}


def every_fault_plan(count: int) -> dict[str, set[str]]:
    """Each lab fault on one domain that runs what it breaks, spread so faults rarely mask one
    another (the domain with the fewest faults so far takes the next)."""
    domains = build_domains(count, {})
    plan: dict[str, set[str]] = {d.name: set() for d in domains}
    for fault in sorted(FAULTS):
        fitting = [d for d in domains if applies_to(d, fault)]
        if fitting:
            chosen = min(fitting, key=lambda d: (len(plan[d.name]), d.index))
            plan[chosen.name].add(fault)
    return plan


def _gather(check: Check, target: Target, sweep: SweepClients) -> Facts | None:
    """`GATHER_SECONDS`, or more for a check that needs it (a probe message's delivery, on a
    loaded machine, can take longer): a gather the deadline cuts records no shape at all."""
    seconds = max(GATHER_SECONDS, min(check.meta.timeout, 30.0))
    try:
        return check.gather(target, sweep.context(time.monotonic() + seconds))
    except Exception:
        return None


def gather_all(fleet: Fleet, leave_out: frozenset[str] = frozenset()) -> dict[str, list[Facts]]:
    """Every applicable check's facts on every target of `fleet`, gathered concurrently."""
    checks = {i: c for i, c in registry.checks().items() if i not in leave_out}
    pairs = [(c, t) for t in fleet.targets() for c in checks.values() if c.applies(t)]
    out: dict[str, list[Facts]] = {}
    with SweepClients(fleet) as sweep, ThreadPoolExecutor(32) as pool:
        for (check, _), facts in zip(pairs, pool.map(lambda p: _gather(p[0], p[1], sweep), pairs),
                                     strict=True):
            if facts is not None:
                out.setdefault(check.meta.id, []).append(facts)
    return out


def _lab_facts(directory: Path, leave_out: frozenset[str] = frozenset(),
               **lab_args: Any) -> dict[str, list[Facts]]:
    lab = Lab(directory, dns_port=0, https_port=0, metrics_listen="127.0.0.1:0", **lab_args)
    lab.start()
    try:
        return gather_all(load_fleet(lab.fleet_path), leave_out)
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def recorded(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Shape]:
    """Per check id, the union of the shapes of everything its gather returned in the labs
    (the session's demo lab, and a lab of its own with every fault)."""
    runs = [
        gather_all(load_fleet(lab.fleet_path)),
        _lab_facts(tmp_path_factory.mktemp("faults"), SCANNING, domains=EVERY_FAULT_DOMAINS,
                   faults=every_fault_plan(EVERY_FAULT_DOMAINS)),
    ]
    shapes: dict[str, Shape] = {}
    for run in runs:
        for check_id, facts in run.items():
            for one in facts:
                record(shapes.setdefault(check_id, {}), one)
    return shapes


def _fixture_cases() -> Iterable[Any]:
    for path in sorted(FIXTURES.glob("*.json")):
        if path.stem in NOT_IN_THE_LAB:
            continue  # their own integration tests hold their facts (see NOT_IN_THE_LAB)
        for case in json.loads(path.read_text()):
            yield pytest.param(path.stem, case, id=f"{path.stem}:{case['name']}")


@pytest.mark.parametrize(("check_id", "case"), list(_fixture_cases()))
def test_fixture_facts_have_the_recorded_shape(recorded: dict[str, Shape], check_id: str,
                                               case: dict[str, Any]) -> None:
    allowed = UNRECORDED.get(check_id, {})
    wrong = [m for m in misfits(recorded[check_id], case["facts"])
             if m.split(":", 1)[0] not in allowed]
    assert not wrong, f"{check_id} fixture {case['name']!r} departs from gather's facts: {wrong}"


def test_unrecorded_paths_are_still_unrecorded(recorded: dict[str, Shape]) -> None:
    """An UNRECORDED entry the labs now produce must go: the list only shrinks."""
    stale = []
    for check_id, paths in UNRECORDED.items():
        for path in paths:
            probe = _value_at(path)
            if not any(m.startswith(path) for m in misfits(recorded[check_id], probe)):
                stale.append(f"{check_id} {path}")
    assert not stale, f"recorded now, drop from UNRECORDED: {stale}"


def _value_at(path: str) -> Any:
    """A minimal value that has `path` (".a.b[].c") and nothing else."""
    value: Any = "x"
    for part in reversed([p for p in path.split(".") if p]):
        value = {part[:-2]: [value]} if part.endswith("[]") else {part: value}
    return value


def test_every_check_is_recorded_or_says_why(recorded: dict[str, Shape]) -> None:
    missing = set(registry.checks()) - set(recorded) - set(NOT_IN_THE_LAB)
    assert not missing, f"no lab target gathers facts for {sorted(missing)}: add one, or say why"
    needless = set(NOT_IN_THE_LAB) & set(recorded)
    assert not needless, f"recorded after all, drop from NOT_IN_THE_LAB: {sorted(needless)}"
