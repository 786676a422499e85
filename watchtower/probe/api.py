"""What a check is: metadata, `gather` (facts from the network) and `judge` (facts -> verdict).

The two steps are separate so that judgement is unit-tested from recorded facts (data-driven
fixtures under tests/fixtures/) and the facts become the evidence a report shows. `gather` may
raise `ProbeError` when the probe cannot run; `judge` never touches the network, never reads the
clock (the runner stamps the time of observation into the facts: `observed_at(facts)`) and never
raises on facts the runner produced. So stored evidence judged again, a day later, gives the
verdict it gave then.

To add a check: write a subclass in the family's module under `checks/`, decorate it with
`@register`, give it a catalog id, and add fixtures for each verdict branch.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from watchtower.errors import ConfigError, ProbeError
from watchtower.model import Target, TargetKind, Verdict, as_json_safe

if TYPE_CHECKING:
    from watchtower.config import Fleet, Secret
    from watchtower.net.dns import Resolver
    from watchtower.net.http import HttpClient, HttpResponse
    from watchtower.net.imap import ImapClient
    from watchtower.net.managesieve import ManageSieveClient
    from watchtower.net.s3 import S3Clients
    from watchtower.net.smtpclient import SmtpClient
    from watchtower.net.tls import TlsFacts, TlsProber
    from watchtower.net.tlsscan import TlsScanner
    from watchtower.probe.clients import DnsApis, Hosts, SharedFacts

Facts = dict[str, Any]
T = TypeVar("T")

#: The key under which the runner records when a probe observed (ISO 8601, UTC).
OBSERVED_AT = "observed_at"


def observed_at(facts: Facts) -> dt.datetime:
    """When the facts were observed: the runner's stamp (`Result.at`), or a fixture's.

    Every judgement that depends on time (certificate expiry, a backup's age, a signature's
    validity window) reads "now" here, never from the clock. Facts without a readable stamp are
    a bug of whoever built them (the runner always stamps): ValueError says so.
    """
    value = facts.get(OBSERVED_AT)
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"facts carry no {OBSERVED_AT} time (ISO 8601): {value!r}")


def reveal(secret: Secret | None, what: str) -> str:
    """A secret's value, read now for the probe that needs it; a missing or unreadable secret
    is a probe that cannot run (`ProbeError`, kind `config`, naming `what`), never a crash."""
    if secret is None:
        raise ProbeError(f"{what} is not configured", kind="config")
    try:
        return secret.reveal()
    except ConfigError as exc:
        raise ProbeError(f"{what}: {exc.problems[0]}", kind="config") from None


@dataclass(frozen=True, slots=True)
class CheckMeta:
    """A check's identity and defaults; `watchtower checks` lists these (a public interface)."""

    id: str
    family: str
    title: str
    applies_to: tuple[TargetKind, ...]
    #: What is asked of the target, and how the answer is judged: the catalog's two columns
    #: (docs/check-catalog.md is generated from them, so the catalog cannot drift).
    query: str = ""
    verdicts: str = ""
    interval: float = 300.0
    timeout: float = 20.0
    standards: tuple[str, ...] = ()
    #: A short human hint on fixing a failure, shown in reports; empty means the report
    #: falls back to watchtower/report/hints.py (keyed by check id).
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "family": self.family,
            "title": self.title,
            "query": self.query,
            "verdicts": self.verdicts,
            "applies_to": [str(k) for k in self.applies_to],
            "interval": self.interval,
            "timeout": self.timeout,
            "standards": list(self.standards),
        }


class Check:
    """Base class of every check. Subclasses set `meta` and implement gather and judge."""

    meta: ClassVar[CheckMeta]

    def applies(self, target: Target) -> bool:
        """Whether this check runs against `target` (default: by target kind)."""
        return target.kind in self.meta.applies_to

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        raise NotImplementedError

    def judge(self, facts: Facts) -> Verdict:
        raise NotImplementedError

    def evidence(self, facts: Facts) -> dict[str, Any]:
        """What of the facts is kept as evidence (default: all of it, JSON-safe)."""
        return dict(as_json_safe(facts))


class HeartbeatLookup(Protocol):
    """Read-only access to pushed heartbeats (watchtower.store.HeartbeatReader)."""

    def last_ping(self, name: str) -> dict[str, Any] | None: ...


@dataclass(slots=True)
class ProbeContext:
    """What one probe may use: the sweep's shared clients (watchtower/probe/clients.py builds
    them, each with its own `[probe]` timeout) and the probe's own deadline. A check never
    builds a client of its own. `heartbeats` is the one thing of the store a probe may read
    (heartbeat.ping)."""

    fleet: Fleet
    dns: Resolver
    http: HttpClient
    tls: TlsProber
    #: Full TLS scans (sslyze), one per server per sweep.
    tls_scan: TlsScanner
    smtp: SmtpClient
    imap: ImapClient
    sieve: ManageSieveClient
    s3: S3Clients
    #: Commands on fleet hosts, and the host facts a sweep shares (one `system_state` each).
    hosts: Hosts
    #: The `[[dns_apis]]` entries (PowerDNS), keys read at the moment of use.
    dns_api: DnsApis
    #: What several checks derive from one observation, once per sweep (`once`).
    shared: SharedFacts
    deadline: float
    heartbeats: HeartbeatLookup | None = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def once(self, key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """`compute()` once per `key` per sweep, shared by every check that asks (the SPF
        evaluation of a domain, the handshake of an endpoint); the value is shared, so a
        caller copies what it will change."""
        value: T = self.shared.observe(key, compute, self.deadline, self.remaining()).value
        return value

    # Thin helpers so checks pass their deadline without thinking about it.
    def resolve(self, name: str, rdtype: str, *, dnssec: bool = False) -> Any:
        return self.dns.resolve(name, rdtype, dnssec=dnssec, deadline=self.deadline)

    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        kwargs.setdefault("deadline", self.deadline)
        return self.http.get(url, **kwargs)

    def tls_probe(self, host: str, port: int, **kwargs: Any) -> TlsFacts:
        """The verified handshake with `host:port` (at `address`, else its first address):
        once per (host, port, address) per sweep for every check that reads the certificate.
        A STARTTLS dialogue is the caller's own and is not shared."""
        kwargs.setdefault("deadline", self.deadline)
        if kwargs.get("starttls") is not None:
            return self.tls.probe(host, port, **kwargs)
        address = kwargs.pop("address", None) or self.tls.address(host, kwargs["deadline"])
        facts: TlsFacts = self.once(("tls", host.lower(), port, address),
                                    lambda: self.tls.probe(host, port, address=address, **kwargs))
        return facts
