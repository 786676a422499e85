"""Which lab domains carry which faults, and switching a fault on or off while the lab runs.

Choosing faults (before start): `DOMAIN=FAULT[,FAULT]` items from the command line, a faults
file (JSON or TOML: `{"domain": ["fault", ...]}`), and/or a random share of the domains
(`random_faults`, seeded so a benchmark or bug report can be replayed exactly).

Switching faults (while it runs): `FaultSwitch.set` puts the fault into the domain's set and
makes the servers say so, touching only what the fault changes:
- stand-in app faults (`role:name`) toggle the app's own `faults` set (atomic, see apps.common);
- certificate faults re-issue the host's certificate and swap its SNI context;
- mail-host faults (spam filter, Sieve, signing key, sealing hop) are read by the lab mail host
  from the domain's set as it works; `dkim-key-rotated` also rewrites its signing key file;
- DNS and mail-record faults re-render the domain's zones (new serial, re-signed) and swap them
  into every view; the parent zone is re-rendered only for faults that change the delegation.
A probe in flight sees the old or the new state, never a mix within one zone.
"""

from __future__ import annotations

import difflib
import json
import random
import threading
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dns.name

from watchtower.lab.fleet import (
    FAULTS,
    LAB_SERIAL,
    NS2_ADDRESS,
    LabDomain,
    parent_zone,
    zone_for,
)
from watchtower.lab.mailhost import MAILHOST_FAULTS

if TYPE_CHECKING:
    from watchtower.lab import Lab

#: Faults that live in the certificate the web front presents for the service host.
CERT_FAULTS = frozenset({"cert-expired", "cert-wrong-name", "cert-untrusted"})
#: DNS faults that change the parent's delegation (NS set or DS), not only the child zone.
DELEGATION_FAULTS = frozenset({"single-ns", "open-recursion", "unsigned"})

#: What `--fault-share` draws from: the failures a provider meets in practice (issue 11's list).
#: Each is drawn only for domains that run the service it breaks.
RANDOM_POOL: tuple[str, ...] = (
    "cert-expired", "cert-wrong-name", "spf-plus-all", "spf-too-many-lookups", "no-dmarc",
    "rrsig-expiring", "lame-ns", "serial-mismatch", "open-relay",
    "fedi:webfinger-wrong-subject", "fedi:nodeinfo-schema-error", "fedi:version-lag",
    "matrix:keys-expired", "garage:degraded", "fedi:hang", "fedi:huge-body",
    "fedi:redirect-loop",
)


class FaultError(ValueError):
    """A fault request the lab cannot honour (unknown domain or fault, wrong service);
    `choices` are what would have been accepted in its place."""

    def __init__(self, message: str, choices: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.choices = tuple(choices)


def applicable(domain: LabDomain) -> list[str]:
    """The faults that can be switched on `domain`, sorted."""
    return [f for f in sorted(FAULTS) if applies_to(domain, f)]


def _unknown(kind: str, name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"unknown {kind} {name!r}" + (f" (did you mean {close[0]}?)" if close else "")


def applies_to(domain: LabDomain, fault: str) -> bool:
    """Whether `domain` runs what `fault` breaks (Matrix faults need a Matrix server...)."""
    role = fault.split(":", 1)[0] if ":" in fault else ""
    if role in ("matrix", "matrix-wk"):
        return domain.has_matrix
    if role in ("garage", "backup"):
        return domain.has_garage
    if role == "cron":
        return domain.index == 0  # one nightly job for the whole lab
    if role == "http":
        return False  # one plain-HTTP redirector serves every domain: not per-domain
    if role == "fedi":
        from watchtower.lab.fleet import APP_ROLES

        name = fault.split(":", 1)[1]
        kind_cls = {"mastodon": 0, "peertube": 1, "pixelfed": 2}[domain.service_kind]
        return name in APP_ROLES["fedi"][kind_cls].fault_names()
    if fault in MAILHOST_FAULTS:
        return domain.index == 0  # the lab's one mail host serves the first domain
    return fault in FAULTS


def parse_items(items: Iterable[str]) -> dict[str, set[str]]:
    """`DOMAIN=FAULT[,FAULT]` items (the `--fault` option) as a mapping."""
    out: dict[str, set[str]] = {}
    for item in items:
        target, sep, names = item.partition("=")
        if not sep or not target:
            raise FaultError(f"--fault {item!r}: expected DOMAIN=FAULT[,FAULT]")
        out.setdefault(target, set()).update(n for n in names.split(",") if n)
    return out


def load_file(path: Path) -> dict[str, set[str]]:
    """A faults file: JSON or TOML (by suffix), `{"domain": ["fault", ...]}` at the top."""
    text = path.read_text()
    raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    if not isinstance(raw, dict):
        raise FaultError(f"{path}: expected a table of domain -> list of faults")
    out: dict[str, set[str]] = {}
    for domain, names in raw.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise FaultError(f"{path}: {domain}: expected a list of fault names")
        out[str(domain)] = set(names)
    return out


def random_faults(domains: Sequence[LabDomain], share: float, seed: int,
                  pool: Sequence[str] = RANDOM_POOL) -> dict[str, set[str]]:
    """One fault each on `share` of the domains (rounded), drawn from `pool` among the faults
    that apply to the domain; the same seed gives the same plan."""
    if not 0.0 <= share <= 1.0:
        raise FaultError(f"--fault-share {share}: expected a fraction between 0 and 1")
    rng = random.Random(seed)
    chosen = rng.sample(list(domains), round(share * len(domains)))
    out: dict[str, set[str]] = {}
    for d in chosen:
        fitting = [f for f in pool if applies_to(d, f)]
        if fitting:
            out[d.name] = {rng.choice(fitting)}
    return out


def merge(*plans: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for plan in plans:
        for domain, names in plan.items():
            out.setdefault(domain, set()).update(names)
    return out


class FaultSwitch:
    """Switches faults on a running `Lab`; one switch at a time (a lock), probes unaffected."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._by_name = {d.name: d for d in lab.domains}
        self._serial: dict[str, int] = {}
        self._lock = threading.Lock()

    def listing(self) -> dict[str, list[str]]:
        """Every domain carrying at least one fault, with its faults (sorted)."""
        return {d.name: sorted(d.faults) for d in self.lab.domains if d.faults}

    def set(self, domain_name: str, fault: str, on: bool) -> list[str]:
        """Switch `fault` on `domain_name`; returns the domain's faults afterwards."""
        domain = self._by_name.get(domain_name)
        if domain is None:
            names = sorted(self._by_name)
            if len(names) > 30:  # a scale lab: its names follow one pattern
                raise FaultError(_unknown("lab domain", domain_name, names) +
                                 f" (the lab's {len(names)} domains are {names[0]} ... "
                                 f"{names[-1]})")
            raise FaultError(_unknown("lab domain", domain_name, names) + "; the lab's "
                             "domains:", names)
        if fault not in FAULTS:
            raise FaultError(_unknown("lab fault", fault, applicable(domain)) +
                             f"; the faults of {domain_name}:", applicable(domain))
        if not applies_to(domain, fault):
            raise FaultError(f"{fault} does not apply to {domain_name} "
                             f"(it runs {domain.service_kind}"
                             f"{', matrix' if domain.has_matrix else ''}"
                             f"{', garage' if domain.has_garage else ''}); its faults:",
                             applicable(domain))
        with self._lock:
            if (fault in domain.faults) == on:
                return sorted(domain.faults)
            if on:
                domain.faults.add(fault)
            else:
                domain.faults.discard(fault)
            if ":" in fault:
                role, name = fault.split(":", 1)
                app = self.lab.sites.app(domain, role)
                if on:
                    app.enable(name)
                else:
                    app.disable(name)
            elif fault in CERT_FAULTS:
                self._reissue(domain)
            elif fault in MAILHOST_FAULTS:
                # The mail host reads the domain's fault set as it works; only its signing
                # key file has to follow (dkim-key-rotated).
                if self.lab.mailhost is not None:
                    self.lab.mailhost.refresh_faults(self.lab.dir / "dkim-s1.key")
            else:
                self._rezone(domain, parent=fault in DELEGATION_FAULTS)
            return sorted(domain.faults)

    def _reissue(self, domain: LabDomain) -> None:
        host = domain.service_host
        cert, key = self.lab.certificate(domain, host)
        self.lab.web.add_certificate(host, cert, key)

    def _rezone(self, domain: LabDomain, *, parent: bool) -> None:
        """Re-render and re-sign `domain`'s zones with a new serial, then swap them in."""
        lab = self.lab
        serial = self._serial.get(domain.name, LAB_SERIAL) + 1
        self._serial[domain.name] = serial
        primary = zone_for(domain, lab.dkim_txt, serial, lab.signer)
        second = (zone_for(domain, lab.dkim_txt, serial - 1, lab.signer)
                  if "serial-mismatch" in domain.faults else primary)
        origin = dns.name.from_text(domain.name + ".")
        parent_z = parent_zone(lab.domains, lab.signer) if parent else None
        for address, view in lab.dns.views.items():
            zones = dict(view.zones)
            zones[origin] = second if address == NS2_ADDRESS else primary
            if parent_z is not None and parent_z.origin is not None:
                zones[parent_z.origin] = parent_z
            lame = set(view.lame)
            axfr = set(view.allow_axfr)
            if address == NS2_ADDRESS:
                (lame.add if "lame-ns" in domain.faults else lame.discard)(origin)
            (axfr.add if "open-axfr" in domain.faults else axfr.discard)(origin)
            # Whole-attribute stores: a query thread reads the old dict or the new one.
            view.zones, view.lame, view.allow_axfr = zones, lame, axfr
