"""The fleet file's settings, one table per concern: `[probe]`, `[store]`, `[retention]`,
`[alerting]`, `[metrics]`, `[feeds]` and `[daemon]`.

They were one `[settings]` table of 31 keys until the file's layout changed; `moved.py` knows
where each old key went, so `watchtower validate` can say so.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from watchtower.config.base import HostPort, Secret, Strict, check_cron, check_hostport

#: Issuer organisation (the O= of the issuing CA's name) -> the domain that CA looks for in
#: CAA `issue` records (RFC 8659 4.2), for the CAs most fediverse hosts use, plus the lab's CA.
DEFAULT_CAA_ISSUERS: dict[str, str] = {
    "Let's Encrypt": "letsencrypt.org",
    "ZeroSSL": "sectigo.com",
    "Sectigo Limited": "sectigo.com",
    "DigiCert Inc": "digicert.com",
    "Google Trust Services": "pki.goog",
    "Google Trust Services LLC": "pki.goog",
    "Buypass AS-983163327": "buypass.com",
    "GlobalSign nv-sa": "globalsign.com",
    "SSL Corporation": "ssl.com",
    "Amazon": "amazon.com",
    "Certainly": "certainly.com",
    "HARICA": "harica.gr",
    "watchtower lab": "lab.watchtower.test",
}


def _port(default: int, meaning: str) -> Any:
    return Field(default=default, gt=0, lt=65536, description=meaning)


def _timeout(default: float, what: str) -> Any:
    return Field(
        default=default, gt=0, le=300,
        description=f"seconds one {what} exchange may take before the probe reports `error` "
                    f"(each probe is also bounded by its check's timeout)")


class ProbeSettings(Strict):
    """How probes reach the fleet: resolvers, ports, timeouts per client, concurrency."""

    nameservers: list[HostPort] = Field(
        default_factory=list,
        description='recursive resolvers probes ask, `host` or `host:port`, e.g. '
                    '`["9.9.9.9", "127.0.0.1:5353"]`; empty: those of /etc/resolv.conf')
    dns_timeout: float = Field(default=3.0, gt=0, le=60,
                               description="seconds one DNS question may take before the next "
                                           "resolver is asked")
    authoritative_port: int = _port(53, "port the DNS checks ask authoritative name servers on "
                                        "(the lab's is high)")
    smtp_port: int = _port(25, "port of the MX hosts' SMTP service (the lab's is high)")
    https_port: int = _port(443, "port of derived https:// URLs (well-known files on a server "
                                 "or account domain; the lab's is high)")
    http_port: int = _port(80, "port web.https.redirect probes plain HTTP on")
    ca_bundle: str | None = Field(
        default=None, description="PEM file of the CAs to trust instead of the system's, e.g. "
                                  "a private CA; relative to the fleet file")
    http_timeout: float = _timeout(10.0, "HTTP(S)")
    tls_timeout: float = _timeout(10.0, "TLS handshake")
    smtp_timeout: float = _timeout(15.0, "SMTP")
    imap_timeout: float = _timeout(15.0, "IMAP")
    sieve_timeout: float = _timeout(10.0, "ManageSieve")
    s3_timeout: float = _timeout(15.0, "S3 API")
    ssh_timeout: float = Field(default=30.0, gt=0, le=600,
                               description="seconds one command on a host (over SSH or local) "
                                           "may take")
    dns_api_timeout: float = _timeout(10.0, "DNS server API (PowerDNS)")
    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0,
                                description="bytes of an HTTP answer read at most; a larger "
                                            "answer is cut off and judged as such")
    concurrency: int = Field(default=32, ge=1, le=1024,
                             description="probes run at once in each sweeping process")
    sweep_processes: int = Field(
        default=0, ge=0, le=64,
        description="processes a large sweep is split over, by domain (0: one per CPU core); "
                    "sweeps of fewer than 200 probes run in the scheduler's own process")
    jitter: float = Field(default=10, ge=0,
                          description="seconds a scheduled sweep may start late at random, so "
                                      "sweeps of many monitors do not start in step (at most a "
                                      "tenth of the interval)")
    trust_anchors: str | None = Field(
        default=None, description="zone file of DS/DNSKEY anchors for DNSSEC validation; "
                                  "default: the root KSK")
    caa_issuers: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CAA_ISSUERS),
        description="certificate issuer organisation -> its CAA issuer domain (dns.caa), e.g. "
                    '`{ "My CA" = "ca.example" }`; added to (or overriding) the defaults')

    @field_validator("nameservers")
    @classmethod
    def _ns(cls, value: list[str]) -> list[str]:
        return [check_hostport(v) for v in value]

    @field_validator("caa_issuers")
    @classmethod
    def _caa_issuers(cls, value: dict[str, str]) -> dict[str, str]:
        """Merge onto the defaults: naming one extra CA must not forget the common ones."""
        return {**DEFAULT_CAA_ISSUERS, **value}


class StoreSettings(Strict):
    """Where results, history and audit live."""

    database: str | None = Field(
        default=None,
        description="SQLAlchemy URL, `sqlite:///path.db` (relative to the fleet file) or "
                    "`postgresql+psycopg://user@host/db`; default: watchtower.db in state_dir")
    state_dir: str | None = Field(
        default=None, description="directory of the default SQLite database and other state; "
                                  "default: $STATE_DIRECTORY, else ~/.local/state/watchtower")

    @field_validator("database")
    @classmethod
    def _db(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("database must be a sqlite:/// or postgresql+psycopg:// URL")
        return value


class RetentionSettings(Strict):
    """How long history is kept (watchtower/store/retention.py).

    Default 3 raw days: at 1,000 domains x 45 checks with 3 % flapping, a raw day costs ~8.4 MB
    and a rolled-up day ~1 MB (bench/bench_store.py), so 30 days stay near 89 MB (7: ~118 MB).
    """

    raw_days: int = Field(
        default=3, ge=1, le=3650,
        description="days result streaks are kept as recorded; older ones become day rollups")
    rollup_days: int = Field(
        default=400, ge=1, le=36500,
        description="days the per-day rollups (probes per status, worst status, changes) are "
                    "kept")
    prune_cron: str = Field(
        default="17 3 * * *",
        description="when retention runs (five-field cron, UTC); also `watchtower store prune`")

    @field_validator("prune_cron")
    @classmethod
    def _prune_cron(cls, value: str) -> str:
        return check_cron(value)


class AlertingSettings(Strict):
    """When a problem becomes an alert (per-check overrides live in `[checks.X]`)."""

    failure_threshold: int = Field(default=3, ge=1,
                                   description="consecutive problem results before an alert "
                                               "fires")
    success_threshold: int = Field(default=2, ge=1,
                                   description="consecutive good results before it resolves")
    reminder_interval: float = Field(default=4 * 3600, ge=0,
                                     description="seconds between reminders while an alert "
                                                 "stays firing (0: no reminders)")


class MetricsAuth(Strict):
    """HTTP basic auth for `/metrics` (Prometheus `basic_auth`); the password is a Secret."""

    username: str = Field(min_length=1, description="user name Prometheus sends")
    password: Secret = Field(description="its password")


class MetricsSettings(Strict):
    """The Prometheus endpoint of `watchtower run`."""

    listen: str = Field(default="127.0.0.1:9810",
                        description="`host:port` /metrics is served on (port 0: any free port)")
    auth: MetricsAuth | None = Field(default=None,
                                     description="basic auth required of scrapers")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_hostport(value, lowest_port=0)


class FeedSettings(Strict):
    """Upstream knowledge for the drift checks (watchtower/inventory)."""

    release: str | None = Field(
        default=None, description="JSON file: software -> newest release (`watchtower feeds "
                                  "update` writes it); relative to the fleet file")
    advisories: list[str] = Field(default_factory=list,
                                  description="vulnix or OSV JSON files of known advisories")
    whitelist: str | None = Field(
        default=None, description="TOML file of advisories accepted on purpose (id, reason, "
                                  "until)")


class DaemonSettings(Strict):
    """The long-running `watchtower run`."""

    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="least severity logged")
