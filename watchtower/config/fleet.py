"""The whole fleet file as one validated model, and the probe targets it declares."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr

from watchtower.config.base import Secret, Strict
from watchtower.config.operations import (
    CheckOverride,
    Dashboard,
    MaintenanceWindow,
    Notifications,
    Remediation,
    ReportSchedule,
)
from watchtower.config.scaleout import ScaleoutSettings
from watchtower.config.sections import (
    AlertingSettings,
    DaemonSettings,
    FederationSettings,
    FeedSettings,
    MetricsSettings,
    ProbeSettings,
    QueueSettings,
    ReportingSettings,
    RetentionSettings,
    StoreSettings,
)
from watchtower.config.targets import (
    Backup,
    DnsApi,
    Endpoint,
    Heartbeat,
    Host,
    MailDomain,
    MailHost,
    OctoDnsZone,
    Service,
    Zone,
)
from watchtower.model import Target, TargetKind


class Fleet(Strict):
    """The whole fleet file, validated; `targets()` turns it into what checks probe."""

    _targets: tuple[tuple[list[Any], ...], list[Target]] | None = PrivateAttr(default=None)

    probe: ProbeSettings = Field(default_factory=ProbeSettings,
                                 description="how probes reach the fleet")
    store: StoreSettings = Field(default_factory=StoreSettings,
                                 description="where results and history live")
    retention: RetentionSettings = Field(default_factory=RetentionSettings,
                                         description="how long history is kept")
    alerting: AlertingSettings = Field(default_factory=AlertingSettings,
                                       description="when a problem becomes an alert")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings,
                                     description="the /metrics endpoint")
    feeds: FeedSettings = Field(default_factory=FeedSettings,
                                description="release and advisory feeds for the drift checks")
    daemon: DaemonSettings = Field(default_factory=DaemonSettings,
                                   description="the long-running `watchtower run`")
    queues: QueueSettings = Field(default_factory=QueueSettings,
                                  description="job-queue and federation-backlog thresholds")
    federation: FederationSettings = Field(default_factory=FederationSettings,
                                           description="the probe actor and Matrix peers")
    reporting: ReportingSettings = Field(default_factory=ReportingSettings,
                                         description="what every compliance report holds to")
    scaleout: ScaleoutSettings = Field(default_factory=ScaleoutSettings,
                                       description="probe agents at several vantage points, "
                                                   "verdicts by quorum")
    zones: list[Zone] = Field(default_factory=list)
    mail_domains: list[MailDomain] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    hosts: list[Host] = Field(default_factory=list)
    mail_hosts: list[MailHost] = Field(default_factory=list)
    endpoints: list[Endpoint] = Field(default_factory=list)
    dns_apis: list[DnsApi] = Field(default_factory=list)
    octodns: list[OctoDnsZone] = Field(default_factory=list)
    checks: dict[str, CheckOverride] = Field(default_factory=dict)
    remediation: Remediation = Field(default_factory=Remediation)
    dashboard: Dashboard = Field(default_factory=Dashboard)
    notifications: Notifications = Field(default_factory=Notifications)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    reports: list[ReportSchedule] = Field(default_factory=list)
    backups: list[Backup] = Field(default_factory=list)
    heartbeats: list[Heartbeat] = Field(default_factory=list)

    # -- derived ----------------------------------------------------------------------------

    def targets(self) -> list[Target]:
        """Every target, built once per (immutable) fleet: each sweep asks for them, and at
        1,000 domains building them (URLs parsed, endpoints validated) showed in profiles."""
        sources = self._target_sources()
        cached = self._targets
        # Keyed by the identity of the lists it was built from: model_copy(update=...) keeps
        # private attributes, and a copy with other zones must not answer with these.
        if cached is None or any(a is not b for a, b in zip(cached[0], sources, strict=True)):
            cached = (sources, self._build_targets())
            self._targets = cached
        return list(cached[1])

    def _target_sources(self) -> tuple[list[Any], ...]:
        """The lists of entries that become targets (each entry `Tagged`)."""
        return (self.zones, self.mail_domains, self.services, self.hosts, self.mail_hosts,
                self.endpoints, self.backups, self.heartbeats)

    def customers(self) -> list[str]:
        """Every customer an entry names (`customer = "..."`), sorted: what reports and the
        `customer:` tag scope by."""
        return sorted({e.customer for entries in self._target_sources() for e in entries
                       if e.customer})

    def _build_targets(self) -> list[Target]:
        out: list[Target] = []
        out += [Target(TargetKind.ZONE, z.name, z, z.all_tags()) for z in self.zones]
        out += [Target(TargetKind.MAIL_DOMAIN, m.name, m, m.all_tags())
                for m in self.mail_domains]
        out += [Target(TargetKind(s.kind), s.name, s, s.all_tags()) for s in self.services]
        out += [Target(TargetKind.HOST, h.name, h, h.all_tags()) for h in self.hosts]
        out += [Target(TargetKind.MAIL_HOST, m.name, m, m.all_tags()) for m in self.mail_hosts]
        out += [Target(TargetKind.BACKUP, b.name, b, b.all_tags()) for b in self.backups]
        out += [Target(TargetKind.HEARTBEAT, h.name, h, h.all_tags()) for h in self.heartbeats]
        out += self._endpoints()
        return out

    def _endpoints(self) -> list[Target]:
        """Every HTTPS endpoint: services, MTA-STS policy hosts, extra endpoints; deduplicated."""
        seen: dict[str, Target] = {}

        def add(url: str, tags: tuple[str, ...], name: str | None = None) -> None:
            parts = urlsplit(url)
            if parts.scheme != "https":
                return
            key = name or parts.netloc.lower()
            if key not in seen:
                seen[key] = Target(TargetKind.ENDPOINT, key, Endpoint(name=key, url=url), tags)

        for s in self.services:
            add(s.base_url, s.all_tags())
        port = _https_port_hint(self.services)
        for s in self.services:  # the hosts serving a service's well-known files are endpoints too
            for host in s.delegation_hosts():
                add(f"https://{host}{port}/", s.all_tags())
        for m in self.mail_domains:
            if m.mta_sts and m.sending:
                add(f"https://mta-sts.{m.name}{port}/", m.all_tags())
        for e in self.endpoints:
            add(e.url, e.all_tags(), e.name)
        return list(seen.values())

    def override_for(self, check_id: str, family: str) -> CheckOverride:
        """Most specific wins: exact id, then glob, then family."""
        if check_id in self.checks:
            return self.checks[check_id]
        for key, value in self.checks.items():
            if any(c in key for c in "*?[") and fnmatch.fnmatchcase(check_id, key):
                return value
        return self.checks.get(family, CheckOverride())

    def secrets(self) -> Iterable[tuple[str, Secret]]:
        """Every secret reference with its key path (for validation and redaction)."""
        for where, attrs in SECRET_FIELDS:
            for path, owner in _entries(self, where):
                for attr in attrs:
                    value = getattr(owner, attr)
                    if value is not None:
                        yield f"{path}.{attr}", value


SECRET_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("services", ("admin_token", "admin_cookie", "metrics_token", "s3_access_key",
                  "s3_secret_key")),
    ("hosts", ("ssh_key",)),
    ("mail_hosts", ("probe_password", "rspamd_password")),
    ("dns_apis", ("api_key",)),
    ("notifications.email", ("password",)),
    ("notifications.apprise", ("url",)),
    ("metrics.auth", ("password",)),
    ("federation", ("actor_key",)),
    ("backups", ("s3_access_key", "s3_secret_key")),
    ("heartbeats", ("token",)),
)
"""Where the fleet file holds secrets: a table (or list of tables) and its Secret-valued keys,
in the order `Fleet.secrets` reports them."""


def _entries(fleet: Fleet, where: str) -> list[tuple[str, Any]]:
    """The object(s) at a dotted attribute path with their key paths (`services[2]`); none
    when a table on the way is absent."""
    node: Any = fleet
    for part in where.split("."):
        node = getattr(node, part)
        if node is None:
            return []
    if isinstance(node, list):
        return [(f"{where}[{i}]", item) for i, item in enumerate(node)]
    return [(where, node)]


def _https_port_hint(services: list[Service]) -> str:
    """The lab serves HTTPS on one high port; reuse a non-default port seen on the services."""
    ports = {urlsplit(s.base_url).port for s in services if s.base_url.startswith("https")}
    ports.discard(None)
    ports.discard(443)
    return f":{ports.pop()}" if len(ports) == 1 else ""
