"""The fleet file: TOML in, typed and validated models out, one clear message per problem.

Every problem names the file, the key path and why (`fleet.toml: services[2].base_url: not an
http(s) URL`), and the command that loaded it exits 2 with no traceback. Secrets are never inline:
a secret field takes `{ "$env" = "NAME" }` or `{ "$file" = "/run/secrets/x" }` and is read only
when used, and its value never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from watchtower.errors import ConfigError
from watchtower.model import Target, TargetKind

ServiceKind = Literal["mastodon", "peertube", "pixelfed", "synapse", "garage"]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never silently turn a check off."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(Strict):
    """A reference to a secret; `reveal()` reads it at the moment of use."""

    env: str | None = Field(default=None, alias="$env")
    file: str | None = Field(default=None, alias="$file")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError('secrets are never inline: use { "$env" = "NAME" } or '
                             '{ "$file" = "/run/secrets/name" }')
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of "$env" or "$file"')
        return self

    def reveal(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError([f"environment variable {self.env} is not set"])
            return value
        assert self.file is not None
        try:
            return Path(self.file).read_text().strip()
        except OSError as exc:
            raise ConfigError([f"secret file {self.file}: {exc.strerror}"]) from None
        except ValueError as exc:  # a NUL byte in the path
            raise ConfigError([f"secret file {self.file!r}: {exc}"]) from None

    def problem(self) -> str | None:
        """Why this secret cannot be read now, or None (used by `validate`)."""
        try:
            self.reveal()
        except ConfigError as exc:
            return exc.problems[0]
        return None

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r})" if self.env else f"Secret(file={self.file!r})"

    __str__ = __repr__


def _check_url(value: str, schemes: tuple[str, ...] = ("https", "http")) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"not a {'/'.join(schemes)} URL: {value!r}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in URL {value!r}") from exc
    return value


def _check_hostport(value: str, lowest_port: int = 1) -> str:
    host, sep, port = value.rpartition(":")
    if value.startswith("[") or not sep:
        return value
    if not host or not port.isdigit() or not lowest_port <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return value


HostPort = Annotated[str, Field(min_length=1)]

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


class MetricsAuth(Strict):
    """HTTP basic auth for `/metrics` (Prometheus `basic_auth`); the password is a Secret."""

    username: str = Field(min_length=1)
    password: Secret


class Settings(Strict):
    database: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite file")
    nameservers: list[HostPort] = Field(default_factory=list)
    dns_timeout: float = Field(default=3.0, gt=0, le=60)
    authoritative_port: int = Field(default=53, gt=0, lt=65536)
    smtp_port: int = Field(default=25, gt=0, lt=65536, description="MX port (lab/tests: high)")
    https_port: int = Field(default=443, gt=0, lt=65536,
                            description="port of derived https:// URLs (well-known files on a "
                                        "server or account domain); the lab's is high")
    http_port: int = Field(default=80, gt=0, lt=65536,
                           description="port web.https.redirect probes plain HTTP on")
    ca_bundle: str | None = None
    http_timeout: float = Field(default=10.0, gt=0, le=300)
    sieve_timeout: float = Field(default=10.0, gt=0, le=300,
                                 description="seconds one ManageSieve read may wait (mail.sieve),"
                                 " within the probe's deadline, e.g. 10")
    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    concurrency: int = Field(default=32, ge=1, le=1024)
    sweep_processes: int = Field(
        default=0, ge=0, le=64,
        description="processes a large sweep is split over, by domain (0: one per CPU core); "
                    "sweeps of fewer than 200 probes run in the scheduler's own process")
    default_interval: float = Field(default=300, ge=1)
    jitter: float = Field(default=10, ge=0)
    metrics_listen: str = "127.0.0.1:9810"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    trust_anchors: str | None = Field(
        default=None, description="zone file of DS/DNSKEY anchors; default: the root KSK")
    caa_issuers: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CAA_ISSUERS),
        description="certificate issuer organisation -> its CAA issuer domain (dns.caa); "
                    "entries given here are added to (or override) the defaults")
    state_dir: str | None = None
    # Alerting (watchtower/alerts.py): consecutive problem results before an alert fires,
    # consecutive good results before it resolves, and the least time between reminders
    # while it stays firing (0 = no reminders). Per-check overrides live in [checks.X].
    failure_threshold: int = Field(default=3, ge=1)
    success_threshold: int = Field(default=2, ge=1)
    reminder_interval: float = Field(default=4 * 3600, ge=0)
    metrics_auth: MetricsAuth | None = None
    release_feed: str | None = Field(default=None, description="JSON: software -> newest release")
    advisory_feeds: list[str] = Field(default_factory=list, description="vulnix/OSV JSON files")
    advisory_whitelist: str | None = None
    # Retention (watchtower/retention.py): raw result streaks are kept this many days, then
    # folded into one row per check, target and day, kept `history_rollup_days`.
    # Default 3: at 1,000 domains x 45 checks with 3 % flapping, a raw day costs ~8.4 MB and a
    # rolled-up day ~1 MB (bench/bench_store.py), so 3 keeps 30 days near 89 MB (7: ~118 MB).
    history_raw_days: int = Field(
        default=3, ge=1, le=3650,
        description="days result streaks are kept as recorded; older ones become day rollups")
    history_rollup_days: int = Field(
        default=400, ge=1, le=36500,
        description="days the per-day rollups (uptime, worst status, changes) are kept")
    prune_cron: str = Field(
        default="17 3 * * *",
        description="when retention runs (five-field cron, UTC); also `watchtower store prune`")

    @field_validator("prune_cron")
    @classmethod
    def _prune_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"invalid cron expression ({exc})") from exc
        return value

    @field_validator("nameservers")
    @classmethod
    def _ns(cls, value: list[str]) -> list[str]:
        return [_check_hostport(v) for v in value]

    @field_validator("caa_issuers")
    @classmethod
    def _caa_issuers(cls, value: dict[str, str]) -> dict[str, str]:
        """Merge onto the defaults: naming one extra CA must not forget the common ones."""
        return {**DEFAULT_CAA_ISSUERS, **value}

    @field_validator("metrics_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _check_hostport(value, lowest_port=0)  # 0: any free port

    @field_validator("database")
    @classmethod
    def _db(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("database must be a sqlite:/// or postgresql+psycopg:// URL")
        return value


class Tagged(Strict):
    tags: list[str] = Field(default_factory=list)
    customer: str | None = None

    def all_tags(self) -> tuple[str, ...]:
        extra = (f"customer:{self.customer}",) if self.customer else ()
        return tuple(self.tags) + extra


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)


def _check_domain(value: str) -> str:
    name = value.rstrip(".").lower()
    labels = name.split(".")
    # letters (IDN too), digits, '-' and '_' only: the name ends up in URLs and DNS questions
    if (not name or len(name) > 253
            or not all(_label_ok(label) for label in labels)):
        raise ValueError(f"not a domain name: {value!r}")
    return name


DeclaredType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "TLSA", "NS"]


class DeclaredRecord(Strict):
    """A record declared by hand (`[[zones]] records = [...]`) for `dns.declared`; `name` is
    relative to the zone (`@` = apex) or absolute with a trailing dot; TXT content may be
    given unquoted."""

    name: str = "@"
    type: DeclaredType
    content: str = Field(min_length=1)
    ttl: int | None = Field(default=None, ge=1)


class Zone(Tagged):
    name: str
    dnssec: bool = True
    nameservers: list[str] = Field(default_factory=list, description="expected NS host names")
    # dns.declared (watchtower/dnsdecl): where unplaced host names live, the CAs allowed to
    # issue (empty: the CA of the served certificates), records added by hand, the TTL.
    default_addresses: list[str] = Field(
        default_factory=list, description="A/AAAA for derived host names with no address")
    caa: list[str] = Field(default_factory=list, description="CAA issuer domains")
    records: list[DeclaredRecord] = Field(default_factory=list)
    record_ttl: int = Field(default=3600, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_domain(value)


class MailDomain(Tagged):
    name: str
    sending: bool = True
    dkim_selectors: list[str] = Field(default_factory=list)
    mta_sts: bool = True
    dane: bool = False
    dnsbl: list[str] = Field(default_factory=list)
    mail_host: str | None = Field(default=None, description="name of the [[mail_hosts]] entry")
    # dns.declared: MX host names in preference order (default: the mail host's), the DKIM
    # public keys by selector (base64 `p=`, or { "$file" = PEM/TXT }), the policy records.
    mx: list[str] = Field(default_factory=list)
    dkim_keys: dict[str, str | Secret] = Field(default_factory=dict)
    spf: str | None = None
    dmarc: str | None = None
    tls_rpt: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_domain(value)


class Service(Tagged):
    name: str
    kind: ServiceKind
    base_url: str
    host: str | None = None
    version: str | None = None
    probe_account: str | None = None
    secure_mode: bool = False
    server_name: str | None = Field(default=None, description="Matrix server name")
    admin_url: str | None = Field(default=None, description="Garage admin API")
    admin_token: Secret | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "garage"
    s3_access_key: Secret | None = None
    s3_secret_key: Secret | None = None
    irreversible_migrations: list[str] = Field(
        default_factory=list, description="versions whose database migrations cannot be undone; "
        "a rollback across one is refused unless forced")
    # dns.declared: where the service's host name points (else its host's addresses)
    addresses: list[str] = Field(default_factory=list)
    cname: str | None = None
    matrix_delegation: Literal["well-known", "srv", "both"] = "well-known"

    @field_validator("base_url", "admin_url", "s3_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    # Both name hosts that become endpoint URLs (delegation_hosts): `exa[ple.org` made
    # Fleet.targets() raise urlsplit's ValueError (found by bench/fuzz_atheris.py).
    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str | None) -> str | None:
        from watchtower.parsers import ParseError
        from watchtower.parsers.matrix import parse_server_name

        if value is not None:
            try:
                parse_server_name(value)
            except ParseError as exc:
                raise ValueError(f"not a Matrix server name ({exc})") from None
        return value

    @field_validator("probe_account")
    @classmethod
    def _probe_account(cls, value: str | None) -> str | None:
        if value is not None and "@" in value:
            _check_domain(value.rsplit("@", 1)[1])
        return value

    @property
    def hostname(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def delegation_hosts(self) -> list[str]:
        """Hosts other than base_url's that serve this service's discovery files: a Matrix
        server name (`.well-known/matrix/*`), a fediverse account domain (WebFinger)."""
        if self.kind == "synapse" and self.server_name:
            candidates = [self.server_name.rsplit(":", 1)[0] if not self.server_name.endswith("]")
                          else self.server_name]
        elif self.kind != "garage" and self.probe_account and "@" in self.probe_account:
            candidates = [self.probe_account.rsplit("@", 1)[1]]
        else:
            candidates = []
        return [h.lower() for h in candidates if h and h.lower() != self.hostname]


class Host(Tagged):
    name: str
    ssh: str | None = Field(default=None, description="user@host[:port]; none = local")
    addresses: list[str] = Field(default_factory=list, description="its public IPs (DNS)")
    ssh_key: Secret | None = None
    known_hosts: str | None = None
    expected_system: str | None = None
    profile: str = "/nix/var/nix/profiles/system"
    # drift.* / host.* (see watchtower/nixos): where the facts live on the host, so tests and
    # unusual layouts can point them elsewhere (a test store's NIX_* variables go in `env`).
    manifest: str | None = Field(default=None, description="JSON: host name -> toplevel path")
    current_system: str = "/run/current-system"
    booted_system: str = "/run/booted-system"
    env: dict[str, str] = Field(default_factory=dict, description="environment for commands")
    nix_env: str = "nix-env"
    nix_store: str = "nix-store"
    nix: str = "nix"
    systemctl: str = "systemctl"
    disk_paths: list[str] = Field(default_factory=lambda: ["/", "/nix"])
    units: list[str] = Field(default_factory=list, description="declared unit names or globs")
    connect_timeout: float = Field(default=10.0, gt=0, le=120)
    ssh_binary: str = "ssh"
    # remediation (see remediations/nixos.py and nix/target-module.nix)
    privileged_helper: list[str] = Field(
        default_factory=list, description='e.g. ["sudo", "watchtower-remediate"]; empty: '
        "run nix-env and switch-to-configuration directly (root or a test store)")
    detach: Literal["systemd-run", "setsid", "none"] = Field(
        default="systemd-run", description="how a switch outlives a lost SSH connection: a "
        "transient unit, setsid --fork (hosts without systemd), or none (waited for)")
    state_dir: str = Field(default="/var/lib/watchtower-target",
                           description="where a setsid-detached switch writes its log")
    switch_confirm_seconds: float = Field(
        default=300.0, gt=0, le=3600,
        description="how long a detached switch may take to update current_system")
    flake: str | None = Field(default=None, description="flake ref for nixos.redeploy")
    restartable_units: list[str] = Field(default_factory=list)

    @field_validator("detach", mode="before")
    @classmethod
    def _detach(cls, value: Any) -> Any:
        """Older fleet files said `detach = true/false`; keep them valid."""
        if isinstance(value, bool):
            return "systemd-run" if value else "none"
        return value


class DkimKeyFile(Strict):
    """One DKIM signing key on a mail host (mail.dkim.key-match): the selector it signs for
    and where its private key lies; only its public half is ever read off the host."""

    domain: str = Field(description="the signing domain (d=), e.g. example.org")
    selector: str = Field(min_length=1, description="the selector (s=), e.g. s1")
    path: str = Field(min_length=1, description="private key file on the host, e.g. "
                      "/var/lib/opendkim/keys/example.org/s1.private or "
                      "/var/lib/rspamd/dkim/example.org.s1.key")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return _check_domain(value)


class MailHost(Tagged):
    name: str
    host: str
    addresses: list[str] = Field(default_factory=list, description="its public IPs (DNS)")
    submission_port: int = 587
    submissions_port: int = 465
    imaps_port: int = 993
    imap_port: int | None = Field(default=None, gt=0, lt=65536,
                                  description="plain IMAP port probed with STARTTLS (143); "
                                  "unset = not offered")
    probe_user: str | None = None
    probe_password: Secret | None = None
    # mail.roundtrip
    roundtrip_to: str | None = Field(default=None, description="recipient of the round-trip "
                                     "probe; default the probe mailbox (it must end up there)")
    roundtrip_via: Literal["submission", "submissions"] = "submission"
    roundtrip_deadline: float = Field(default=60.0, gt=0, le=600,
                                      description="seconds a probe message may take to arrive")
    expect_auth_results: bool = Field(default=False, description="require spf and dmarc "
                                      "results in Authentication-Results (set when the "
                                      "receiving side adds them)")
    expect_arc: bool = Field(default=False, description="the round trip passes a hop that "
                             "seals with ARC (e.g. roundtrip_to is a forwarding alias): "
                             "require a valid ARC chain (cv=pass), not only judge one present")
    # mail.sieve
    sieve_port: int = Field(default=4190, gt=0, lt=65536,
                            description="ManageSieve port (RFC 5804; STARTTLS, then login with "
                            "the probe mailbox), e.g. 4190")
    sieve_extensions: list[str] = Field(
        default_factory=lambda: ["fileinto"],
        description='Sieve extensions the SIEVE capability must list, e.g. ["fileinto", '
                    '"vacation", "imap4flags"]')
    sieve_folder: str = Field(default="watchtower-sieve", min_length=1,
                              description="folder of the probe mailbox that the probe's Sieve "
                              "script files its test message into (created if missing)")
    # mail.spam-filter
    spam_filter: Literal["reject", "junk"] = Field(
        default="reject", description="what the filter does with the GTUBE test message: "
        "reject it at SMTP (5xx) or deliver it marked as spam or into junk_folder")
    junk_folder: str = Field(default="Junk", min_length=1,
                             description="the probe mailbox's spam folder, e.g. Junk")
    rspamd_controller: str | None = Field(
        default=None, description="Rspamd controller URL for /ping and /stat, e.g. "
        "http://127.0.0.1:11334; unset: no controller health")
    rspamd_password: Secret | None = Field(default=None,
                                           description="the controller's (read-only) password")
    # mail.dkim.key-match
    runs_on: str | None = Field(default=None, description="name of the [[hosts]] entry this "
                                "mail server runs on: the host transport that reads the public "
                                "halves of its DKIM keys")
    dkim_keys: list[DkimKeyFile] = Field(default_factory=list,
                                         description="the signing keys on the host")
    dkim_pubkey_command: list[str] = Field(
        default_factory=lambda: ["openssl", "pkey", "-pubout", "-in"], min_length=1,
        description="argv that prints the PEM public half of the key file named after it, "
        'run on the host, e.g. ["sudo", "-n", "openssl", "pkey", "-pubout", "-in"]')

    @field_validator("rspamd_controller")
    @classmethod
    def _controller(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class Endpoint(Tagged):
    name: str | None = None
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value, ("https",))


class DnsApi(Strict):
    name: str
    kind: Literal["powerdns"] = "powerdns"
    url: str
    api_key: Secret
    server_id: str = "localhost"
    zones: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class CheckOverride(Strict):
    interval: float | None = Field(default=None, ge=1)
    cron: str | None = None
    timeout: float | None = Field(default=None, gt=0, le=3600)
    disabled: bool = False
    failure_threshold: int | None = Field(default=None, ge=1)
    success_threshold: int | None = Field(default=None, ge=1)


class EmailChannel(Strict):
    """Alert mail over SMTP (watchtower/net/mailer.py); the password is read at send time."""

    name: str
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: Secret | None = None
    sender: str = Field(min_length=3)
    to: list[str] = Field(min_length=1)
    ca_bundle: str | None = None
    only: list[str] = Field(default_factory=list, description="check id/family globs")


class AppriseChannel(Strict):
    """Any apprise target (matrix://, ntfy://, json://...); the URL embeds tokens: a Secret."""

    name: str
    url: Secret
    only: list[str] = Field(default_factory=list, description="check id/family globs")


class Notifications(Strict):
    email: list[EmailChannel] = Field(default_factory=list)
    apprise: list[AppriseChannel] = Field(default_factory=list)
    retry_initial: float = Field(default=30, gt=0, description="first retry delay, seconds")
    retry_max: float = Field(default=3600, gt=0, description="backoff cap, seconds")
    broken_after: int = Field(default=5, ge=1, description="failures in a row = broken")


ReportFormat = Literal["html", "text", "json", "pdf"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("html", "text", "json", "pdf")


class ReportSchedule(Strict):
    """A compliance report mailed on a cron schedule (watchtower/report). SMTP comes from the
    named `[[notifications.email]]` channel (one relay configuration, not two); `recipients`
    replaces that channel's `to`. `customer` limits the report to that customer's targets."""

    name: str = Field(min_length=1)
    cron: str = Field(description="crontab expression, UTC, e.g. '0 6 1 * *'")
    customer: str | None = None
    recipients: list[str] = Field(min_length=1)
    channel: str = Field(description="name of the [[notifications.email]] relay to send with")
    formats: list[ReportFormat] = Field(
        default_factory=lambda: list(REPORT_FORMATS),
        description="parts of the mail: html body, text alternative, json and pdf attachments")
    period_days: int = Field(default=30, ge=1, le=3660)


class MaintenanceWindow(Strict):
    """Silences notifications (probing goes on): one-off `start`/`end`, or `cron` + `duration`."""

    name: str
    targets: list[str] = Field(default_factory=list, description="target name globs; [] = all")
    tags: list[str] = Field(default_factory=list, description="any of these tags")
    checks: list[str] = Field(default_factory=list, description="check id/family globs")
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    cron: str | None = None
    duration: float | None = Field(default=None, gt=0, description="minutes, with cron")
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        from watchtower.maintenance import window_problem

        problem = window_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class DnsTemplate(Strict):
    """A record the dns.records remediation writes; `{domain}` and `{serial}` are filled in."""

    name: str
    type: Literal["TXT", "CAA", "MX", "A", "AAAA", "CNAME", "SRV", "TLSA"]
    content: str
    ttl: int = Field(default=3600, ge=60)


class DashboardOidc(Strict):
    """Sign-in through OIDC with Streamlit's `st.login`. The client id and secret live in a
    Streamlit secrets file (`[auth]` section), never in the fleet file; watchtower passes its
    path to Streamlit. Who is an operator is decided here, by e-mail."""

    secrets_file: str = Field(description="Streamlit secrets.toml holding the [auth] section")
    provider: str | None = Field(default=None, description="[auth.<provider>] name, if several")
    operators: list[str] = Field(default_factory=list, description="e-mails with operator role")
    default_role: Literal["viewer", "operator", "none"] = "viewer"


class Dashboard(Strict):
    """The Streamlit dashboard: local users (scrypt hashes) or OIDC, and the idle timeout."""

    users_file: str | None = Field(
        default=None, description="local users (scrypt hashes), from `watchtower dashboard-user "
                                  "add`; relative to the fleet file")
    session_minutes: float = Field(default=30, gt=0, le=24 * 60,
                                   description="idle minutes before a session is signed out")
    oidc: DashboardOidc | None = Field(default=None,
                                       description="sign-in through OIDC (Streamlit st.login)")


class Remediation(Strict):
    """Policies per remediation (`"nixos.rollback"`) or per remediation and target
    (`"nixos.rollback@web1"`): off, dry-run (the default), approve or auto."""

    default_policy: Literal["off", "dry-run", "approve", "auto"] = "dry-run"
    policies: dict[str, Literal["off", "dry-run", "approve", "auto"]] = Field(
        default_factory=dict)
    max_per_host_per_hour: int = Field(default=4, ge=1)
    lock_seconds: float = Field(default=1800, gt=0)
    settle_seconds: float | None = Field(default=None, ge=0,
                                         description="override every remediation's settle delay")
    dns_templates: dict[str, DnsTemplate] = Field(
        default_factory=dict, description="check id -> the record that fixes its failure")


class Fleet(Strict):
    """The whole fleet file, validated; `targets()` turns it into what checks probe."""

    _targets: tuple[tuple[list[Any], ...], list[Target]] | None = PrivateAttr(default=None)

    settings: Settings = Field(default_factory=Settings)
    zones: list[Zone] = Field(default_factory=list)
    mail_domains: list[MailDomain] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    hosts: list[Host] = Field(default_factory=list)
    mail_hosts: list[MailHost] = Field(default_factory=list)
    endpoints: list[Endpoint] = Field(default_factory=list)
    dns_apis: list[DnsApi] = Field(default_factory=list)
    checks: dict[str, CheckOverride] = Field(default_factory=dict)
    remediation: Remediation = Field(default_factory=Remediation)
    dashboard: Dashboard = Field(default_factory=Dashboard)
    notifications: Notifications = Field(default_factory=Notifications)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    reports: list[ReportSchedule] = Field(default_factory=list)

    # -- derived ----------------------------------------------------------------------------

    def targets(self) -> list[Target]:
        """Every target, built once per (immutable) fleet: each sweep asks for them, and at
        1,000 domains building them (URLs parsed, endpoints validated) showed in profiles."""
        sources = (self.zones, self.mail_domains, self.services, self.hosts, self.mail_hosts,
                   self.endpoints)
        cached = self._targets
        # Keyed by the identity of the lists it was built from: model_copy(update=...) keeps
        # private attributes, and a copy with other zones must not answer with these.
        if cached is None or any(a is not b for a, b in zip(cached[0], sources, strict=True)):
            cached = (sources, self._build_targets())
            self._targets = cached
        return list(cached[1])

    def _build_targets(self) -> list[Target]:
        out: list[Target] = []
        out += [Target(TargetKind.ZONE, z.name, z, z.all_tags()) for z in self.zones]
        out += [Target(TargetKind.MAIL_DOMAIN, m.name, m, m.all_tags())
                for m in self.mail_domains]
        out += [Target(TargetKind(s.kind), s.name, s, s.all_tags()) for s in self.services]
        out += [Target(TargetKind.HOST, h.name, h, h.all_tags()) for h in self.hosts]
        out += [Target(TargetKind.MAIL_HOST, m.name, m, m.all_tags()) for m in self.mail_hosts]
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
        for i, s in enumerate(self.services):
            for attr in ("admin_token", "s3_access_key", "s3_secret_key"):
                value = getattr(s, attr)
                if value is not None:
                    yield f"services[{i}].{attr}", value
        for i, h in enumerate(self.hosts):
            if h.ssh_key is not None:
                yield f"hosts[{i}].ssh_key", h.ssh_key
        for i, mh in enumerate(self.mail_hosts):
            if mh.probe_password is not None:
                yield f"mail_hosts[{i}].probe_password", mh.probe_password
            if mh.rspamd_password is not None:
                yield f"mail_hosts[{i}].rspamd_password", mh.rspamd_password
        for i, api in enumerate(self.dns_apis):
            yield f"dns_apis[{i}].api_key", api.api_key
        for i, mail in enumerate(self.notifications.email):
            if mail.password is not None:
                yield f"notifications.email[{i}].password", mail.password
        for i, ap in enumerate(self.notifications.apprise):
            yield f"notifications.apprise[{i}].url", ap.url
        if self.settings.metrics_auth is not None:
            yield "settings.metrics_auth.password", self.settings.metrics_auth.password


def _https_port_hint(services: list[Service]) -> str:
    """The lab serves HTTPS on one high port; reuse a non-default port seen on the services."""
    ports = {urlsplit(s.base_url).port for s in services if s.base_url.startswith("https")}
    ports.discard(None)
    ports.discard(443)
    return f":{ports.pop()}" if len(ports) == 1 else ""


# -- loading --------------------------------------------------------------------------------


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("function-", "function_")):
            continue
        else:
            out += ("." if out else "") + (part if _plain_key(str(part)) else f'"{part}"')
    return out or "(top level)"


def _plain_key(key: str) -> bool:
    return key.replace("_", "").replace("-", "").replace("$", "").isalnum()


def _message(err: Any) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, "):]
    return msg


def parse_fleet(data: dict[str, Any], source: str = "<config>",
                known_checks: Iterable[tuple[str, str]] | None = None,
                *, check_secrets: bool = True) -> Fleet:
    """Validate parsed TOML; raises ConfigError listing every problem.

    `check_secrets=False` validates the shape only (for a file meant for another machine,
    whose secret files exist only there).
    """
    try:
        fleet = Fleet.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {_loc(tuple(e['loc']))}: {_message(e)}" for e in exc.errors()]
        raise ConfigError(problems) from None
    problems = [f"{source}: {p}"
                for p in semantic_problems(fleet, known_checks, check_secrets=check_secrets)]
    if problems:
        raise ConfigError(problems)
    return fleet


def semantic_problems(fleet: Fleet, known_checks: Iterable[tuple[str, str]] | None,
                      *, check_secrets: bool = True) -> list[str]:
    """Rules that span entries: duplicate names, dangling references, unknown check ids."""
    problems: list[str] = []
    for section in ("zones", "mail_domains", "services", "hosts", "mail_hosts", "dns_apis"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(fleet, section)):
            name = item.name
            if name in seen:
                problems.append(f"{section}[{i}].name: duplicate target {name!r} "
                                f"(also {section}[{seen[name]}])")
            else:
                seen[name] = i
    channel_names = [c.name for c in fleet.notifications.email + fleet.notifications.apprise]
    for name in sorted({n for n in channel_names if channel_names.count(n) > 1}):
        problems.append(f"notifications: duplicate channel name {name!r}")
    host_names = {h.name for h in fleet.hosts}
    for i, s in enumerate(fleet.services):
        if s.host is not None and s.host not in host_names:
            problems.append(f"services[{i}].host: no [[hosts]] entry named {s.host!r}")
        if s.kind == "garage" and s.admin_url is None:
            problems.append(f"services[{i}].admin_url: required for a garage service")
    for i, mh in enumerate(fleet.mail_hosts):
        if mh.runs_on is not None and mh.runs_on not in host_names:
            problems.append(f"mail_hosts[{i}].runs_on: no [[hosts]] entry named {mh.runs_on!r}")
        if mh.dkim_keys and mh.runs_on is None:
            problems.append(f"mail_hosts[{i}].dkim_keys: set runs_on too (the [[hosts]] entry "
                            "whose transport reads the keys)")
        if mh.rspamd_password is not None and mh.rspamd_controller is None:
            problems.append(f"mail_hosts[{i}].rspamd_password: set rspamd_controller too")
    mail_host_names = {m.name for m in fleet.mail_hosts}
    for i, m in enumerate(fleet.mail_domains):
        if m.mail_host is not None and m.mail_host not in mail_host_names:
            problems.append(f"mail_domains[{i}].mail_host: no [[mail_hosts]] entry named "
                            f"{m.mail_host!r}")
    if known_checks is not None:
        known = list(known_checks)
        ids = {cid for cid, _ in known}
        families = {fam for _, fam in known}
        for key in fleet.checks:
            if key in ids or key in families:
                continue
            if any(c in key for c in "*?[") and any(fnmatch.fnmatchcase(i, key) for i in ids):
                continue
            problems.append(f'checks."{key}": unknown check id or family')
    email_channels = {e.name for e in fleet.notifications.email}
    report_names: set[str] = set()
    for i, rep in enumerate(fleet.reports):
        if rep.name in report_names:
            problems.append(f"reports[{i}].name: duplicate report {rep.name!r}")
        report_names.add(rep.name)
        if rep.channel not in email_channels:
            problems.append(f"reports[{i}].channel: no [[notifications.email]] entry named "
                            f"{rep.channel!r}")
        cron_problem = _cron_problem(rep.cron)
        if cron_problem:
            problems.append(f"reports[{i}].cron: {cron_problem}")
    for key, override in fleet.checks.items():
        if override.cron is not None:
            problem = _cron_problem(override.cron)
            if problem:
                problems.append(f'checks."{key}".cron: {problem}')
    for path, secret in fleet.secrets() if check_secrets else ():
        why = secret.problem()
        if why:
            problems.append(f"{path}: {why}")
    return problems


def _cron_problem(expr: str) -> str | None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr)
    except ValueError as exc:
        return f"invalid cron expression ({exc})"
    return None


def load_fleet(path: str | Path, known_checks: Iterable[tuple[str, str]] | None = None) -> Fleet:
    """Read and validate a fleet file; every problem becomes one line of ConfigError."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{p}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: invalid TOML: {exc}"]) from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        raise ConfigError([f"{p}: invalid TOML: nested too deeply"]) from None
    fleet = parse_fleet(data, str(p), known_checks)
    try:
        return _resolve_relative(fleet, p.parent)
    except ValueError as exc:  # a NUL byte in a relative path
        raise ConfigError([f"{p}: a path in the settings is unusable ({exc})"]) from None


def _resolve_relative(fleet: Fleet, base: Path) -> Fleet:
    """Relative paths in settings are relative to the fleet file, not the working directory."""
    settings = fleet.settings
    updates: dict[str, Any] = {}
    for key in ("ca_bundle", "trust_anchors", "state_dir", "release_feed", "advisory_whitelist"):
        value = getattr(settings, key)
        if value and not os.path.isabs(value):
            updates[key] = str((base / value).resolve())
    if any(not os.path.isabs(f) for f in settings.advisory_feeds):
        updates["advisory_feeds"] = [str((base / f).resolve()) for f in settings.advisory_feeds]
    hosts = [h.model_copy(update={"manifest": str((base / h.manifest).resolve())})
             if h.manifest and not os.path.isabs(h.manifest) else h for h in fleet.hosts]
    if any(a is not b for a, b in zip(hosts, fleet.hosts, strict=True)):
        fleet = fleet.model_copy(update={"hosts": hosts})
    dash = fleet.dashboard
    if dash.users_file and not os.path.isabs(dash.users_file):
        dash = dash.model_copy(update={"users_file": str((base / dash.users_file).resolve())})
    if dash.oidc and not os.path.isabs(dash.oidc.secrets_file):
        oidc = dash.oidc.model_copy(
            update={"secrets_file": str((base / dash.oidc.secrets_file).resolve())})
        dash = dash.model_copy(update={"oidc": oidc})
    if dash is not fleet.dashboard:
        fleet = fleet.model_copy(update={"dashboard": dash})
    db = settings.database
    if db and db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
        rel = db[len("sqlite:///"):]
        if rel and rel != ":memory:":
            updates["database"] = "sqlite:///" + str((base / rel).resolve())
    if not updates:
        return fleet
    return fleet.model_copy(update={"settings": settings.model_copy(update=updates)})


def default_state_dir(settings: Settings) -> Path:
    if settings.state_dir:
        return Path(settings.state_dir)
    env = os.environ.get("WATCHTOWER_STATE_DIR") or os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "watchtower"


def database_url(settings: Settings) -> str:
    if settings.database:
        return settings.database
    return "sqlite:///" + str(default_state_dir(settings) / "watchtower.db")
