"""The fleet file's settings, one table per concern: `[probe]`, `[store]`, `[retention]`,
`[alerting]`, `[metrics]`, `[feeds]` and `[daemon]`.

They were one `[settings]` table of 31 keys until the file's layout changed; `moved.py` knows
where each old key went, so `watchtower validate` can say so.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from watchtower.config.base import HostPort, Secret, Strict, check_cron, check_hostport, check_url

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


class QueueSettings(Strict):
    """Thresholds of the job-queue and federation-backlog checks (fedi.queues,
    matrix.federation.backlog, storage.blocks).

    Latency: toot.community's published Mastodon alert rules warn at a Sidekiq queue latency of
    30 s and page at 120 s (toot-community/mastodon-observability, lib/mastodon/config.libsonnet:
    latencyWarningSeconds, latencyCriticalSeconds); Pixelfed's own config/horizon.php fires
    Horizon's LongWaitDetected at 30 s on every queue. The same pair judges PeerTube's oldest
    waiting job and Synapse's federation-sender event processing lag: all four are the age of
    the oldest work not yet done."""

    latency_warn: float = Field(default=30.0, gt=0, description="seconds of queue latency "
                                "(oldest waiting job) that warn, e.g. 30")
    latency_fail: float = Field(default=120.0, gt=0, description="seconds of queue latency "
                                "that fail, e.g. 120")
    failed_jobs_warn: int = Field(
        default=25, ge=1, description="failed jobs kept by PeerTube or Horizon (Horizon: its "
        "trim.recent_failed window, 7 days in Pixelfed) at which fedi.queues warns; no published "
        "figure exists, 25 is watchtower's")
    dead_jobs_warn: int = Field(
        default=9000, ge=1, description="Sidekiq dead-set size that warns: Sidekiq keeps at most "
        "dead_max_jobs = 10,000 dead jobs and silently drops older ones past that, e.g. 9000")
    retry_jobs_warn: int | None = Field(
        default=None, ge=1, description="Sidekiq retry-set size that warns (none: reported "
        "only; it scales with the instance, toot.community alerts on dead-set growth instead)")
    pending_pdus_warn: int = Field(
        default=1000, ge=1, description="PDUs queued in Synapse's federation sender that warn "
        "(synapse_federation_transaction_queue_pending_pdus); watchtower's figure, e.g. 1000")
    resync_queue_warn: int = Field(
        default=10000, ge=1, description="Garage blocks queued for resync that warn "
        "(block_resync_queue_length; Garage calls a non-zero queue normal), e.g. 10000")


class FederationSettings(Strict):
    """Federation-wide settings: the probe actor watchtower signs ActivityPub fetches as, and
    when failing Matrix destinations point at our side rather than theirs."""

    actor_url: str | None = Field(
        default=None, description="URL of watchtower's probe actor document (its key id is "
        "actor_url#main-key); served by `watchtower run` or published by the operator, e.g. "
        "https://monitor.example.org/actor")
    actor_key: Secret | None = Field(
        default=None, description="PEM RSA private key of the probe actor (signs fetches)")
    failing_share_warn: float = Field(
        default=0.5, gt=0, le=1, description="share of known Matrix destinations failing at "
        "which matrix.federation.destinations warns (more than half unreachable: likely our "
        "side), e.g. 0.5")

    @field_validator("actor_url")
    @classmethod
    def _actor_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)


class ReportingSettings(Strict):
    """What every compliance report (`watchtower report`, `[[reports]]`) holds to."""

    min_span_hours: float = Field(
        default=24.0, gt=0, le=24 * 3660,
        description="hours of scheduled probes (first to last, within the period) a report "
                    "needs before it states an availability; with less it says so instead, "
                    "e.g. `not enough data: 5 minutes of a 30-day period`. Example: `24`")
