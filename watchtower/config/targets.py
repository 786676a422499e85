"""The things a fleet is made of: zones, mail domains, services, hosts, mail hosts, extra
endpoints and the DNS server APIs that manage zones. Each becomes one or more probe targets
(`Fleet.targets()`). The mail ones (mail domains, mail hosts and their DKIM key files) are
in `mail_targets.py` and named here too."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, Tag, field_validator

from watchtower.config.base import Secret, Strict, Tagged, check_domain, check_url
from watchtower.config.mail_targets import DkimKeyFile, MailDomain, MailHost

__all__ = ["Backup", "DeclaredRecord", "DkimKeyFile", "DnsApi", "Endpoint", "Heartbeat", "Host",
           "MailDomain", "MailHost", "OctoDnsZone", "Service", "ServiceKind", "Zone"]

ServiceKind = Literal["mastodon", "peertube", "pixelfed", "synapse", "garage"]


DeclaredType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "TLSA", "NS"]


class DeclaredRecord(Strict):
    """A record declared by hand (`[[zones]] records = [...]`) for `dns.declared`; `name` is
    relative to the zone (`@` = apex) or absolute with a trailing dot; TXT content may be
    given unquoted."""

    name: str = Field(default="@", description="owner name relative to the zone (`@`: the "
                      'apex) or absolute with a trailing dot, e.g. "www" or "mail.example.org."')
    type: DeclaredType = Field(description='record type, e.g. "TXT"')
    content: str = Field(min_length=1, description="the record data in zone-file form; TXT may "
                         'be unquoted, e.g. "10 mail.example.org." for an MX')
    ttl: int | None = Field(default=None, ge=1, description="seconds; default: the zone's "
                            "record_ttl, e.g. 300")


class OctoDnsZone(Strict):
    """Where a zone kept as code by octoDNS lives (watchtower/dnsdecl/octodns.py): octoDNS's
    config file, the target provider the zone is synced to, the git work tree holding the
    zone's YAML, and how `dns.records` fixes it. In `[[zones]] octodns = { ... }`, or in a
    named `[[octodns]]` table that zones reference by name (`octodns = "NAME"`)."""

    name: str | None = Field(
        default=None, description="name zones reference (`[[octodns]]` tables only); e.g. "
                                  '"fediversity"')
    config: str = Field(description="octoDNS config file (YAML), relative to the fleet file; "
                                    'e.g. "/srv/dns/config/production.yaml"')
    target: str = Field(min_length=1, description="the octoDNS provider (a key of its "
                                                  '`providers`) the zone is synced to; e.g. '
                                                  '"powerdns"')
    repo: str = Field(description="git work tree holding the zone YAML, relative to the "
                                  'fleet file; e.g. "/srv/dns"')
    zone: str | None = Field(default=None, description="the zone's name in the octoDNS config "
                                                       "when it differs from the `[[zones]]` "
                                                       'name; e.g. "example.org."')
    mode: Literal["commit", "sync"] = Field(
        default="commit", description="how `dns.records` fixes the zone: `commit` (a commit "
                                      "on `branch` for review; the operator syncs) or `sync` "
                                      "(a commit on the checked-out branch, then octoDNS sync "
                                      "of this zone only)")
    branch: str = Field(default="watchtower/dns", min_length=1,
                        description="branch `commit` mode commits to (created from HEAD); "
                                    'e.g. "watchtower/dns"')
    timeout: float = Field(default=30.0, gt=0, le=600,
                           description="seconds an octoDNS plan or sync may take; e.g. 30")


def _octodns_kind(value: Any) -> str:
    return "<name>" if isinstance(value, str) else "<table>"


#: A zone's octoDNS declaration: an inline table, or the name of an `[[octodns]]` table. The
#: tags keep pydantic from reporting a bad table twice (once per union member); the loader
#: drops them from the key path.
OctoDnsRef = Annotated[Annotated[str, Tag("<name>")] | Annotated[OctoDnsZone, Tag("<table>")],
                       Discriminator(_octodns_kind)]


class Zone(Tagged):
    name: str = Field(description='the DNS zone (a target of the dns checks), e.g. "example.org"')
    dnssec: bool = Field(default=True, description="the zone is signed: dns.dnssec.valid fails "
                         "an unsigned or insecure one; false: that is ok (bogus still fails)")
    nameservers: list[str] = Field(default_factory=list, description="expected NS host names")
    # dns.declared (watchtower/dnsdecl): where unplaced host names live, the CAs allowed to
    # issue (empty: the CA of the served certificates), records added by hand, the TTL.
    default_addresses: list[str] = Field(
        default_factory=list, description="A/AAAA for derived host names with no address")
    caa: list[str] = Field(default_factory=list, description="CAA issuer domains")
    records: list[DeclaredRecord] = Field(
        default_factory=list, description="records declared by hand for dns.declared; they "
        "replace derived ones of the same name and type")
    record_ttl: int = Field(default=3600, ge=1, description="seconds: the TTL dns.declared "
                            "expects of derived records, e.g. 3600")
    octodns: OctoDnsRef | None = Field(
        default=None, description="the zone is kept as code by octoDNS: a table, or the name "
                                  'of an `[[octodns]]` entry; e.g. "fediversity"')

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_domain(value)


class Service(Tagged):
    name: str = Field(description='the target name of the service, e.g. "social"')
    kind: ServiceKind = Field(description="which software it is: selects its checks")
    base_url: str = Field(description='its public URL, e.g. "https://social.example.org/"')
    host: str | None = Field(default=None, description="name of the [[hosts]] entry it runs "
                             "on (host facts, drift and remediation), e.g. \"web1\"")
    version: str | None = Field(default=None, description="the version it should run: "
                                'drift.version compares the running one, e.g. "4.3.2"')
    probe_account: str | None = Field(
        default=None, description="an account on it the fedi checks look up (WebFinger, "
        'actor), e.g. "watchtower@example.org"; unset: those checks do not run')
    secure_mode: bool = Field(default=False, description="authorized fetch is on (Mastodon "
                              "AUTHORIZED_FETCH): unsigned actor fetches are expected to be "
                              "refused")
    server_name: str | None = Field(default=None, description="Matrix server name")
    admin_url: str | None = Field(
        default=None, description="Garage admin API; Synapse admin API base (default base_url); "
        "Pixelfed's Horizon, e.g. https://photos.example.org/horizon")
    admin_token: Secret | None = Field(
        default=None, description="bearer token of admin_url: Garage admin token, Synapse admin "
        "access token, PeerTube OAuth token of an admin (fedi.queues reads /api/v1/jobs)")
    admin_cookie: Secret | None = Field(
        default=None, description="Cookie header value of an admin session for Pixelfed's "
        "Horizon (its viewHorizon gate admits logged-in admins only), e.g. "
        "laravel_session=...")
    metrics_url: str | None = Field(
        default=None, description="Prometheus text endpoint: Mastodon's exporter "
        "(MASTODON_PROMETHEUS_EXPORTER_LOCAL, e.g. http://127.0.0.1:9394/metrics), Synapse's "
        "metrics listener (http://127.0.0.1:9000/_synapse/metrics), Garage's admin /metrics "
        "(default admin_url + /metrics)")
    metrics_token: Secret | None = Field(
        default=None, description="bearer token of metrics_url (Garage metrics_token)")
    federation_peers: list[str] = Field(
        default_factory=list, description="Matrix server names this homeserver must reach: "
        "matrix.federation.outbound fetches their keys through it, "
        "matrix.federation.destinations fails when one is failing")
    s3_endpoint: str | None = Field(default=None, description="Garage S3 API URL that "
                                    "storage.roundtrip uses, e.g. https://s3.example.org")
    s3_bucket: str | None = Field(default=None, description="bucket storage.roundtrip writes "
                                  'its canary object to, e.g. "watchtower-probe"')
    s3_region: str = Field(default="garage", description="SigV4 region of the S3 API (Garage's "
                           "s3_region)")
    s3_access_key: Secret | None = Field(default=None, description="S3 access key id of the "
                                         "probe bucket's key")
    s3_secret_key: Secret | None = Field(default=None, description="S3 secret key of the "
                                         "probe bucket's key")
    irreversible_migrations: list[str] = Field(
        default_factory=list, description="versions whose database migrations cannot be undone; "
        "a rollback across one is refused unless forced")
    # dns.declared: where the service's host name points (else its host's addresses)
    addresses: list[str] = Field(default_factory=list, description="A/AAAA dns.declared "
                                 "expects for its host name; default: its host's addresses, "
                                 'e.g. ["192.0.2.10"]')
    cname: str | None = Field(default=None, description="CNAME target dns.declared expects for "
                              'its host name instead of addresses, e.g. "web1.example.org"')
    matrix_delegation: Literal["well-known", "srv", "both"] = Field(
        default="well-known", description="how a Matrix server name delegates to base_url: "
        "`.well-known/matrix/server`, an `_matrix-fed._tcp` SRV record dns.declared expects, "
        "or both")

    @field_validator("base_url", "admin_url", "s3_endpoint", "metrics_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

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
            check_domain(value.rsplit("@", 1)[1])
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
    name: str = Field(description='the host\'s name in results and references, e.g. "web1"')
    ssh: str | None = Field(default=None, description="user@host[:port]; none = local")
    addresses: list[str] = Field(default_factory=list, description="its public IPs (DNS)")
    ssh_key: Secret | None = Field(default=None, description="private SSH key to log in with; "
                                   "unset: ssh's defaults (~/.ssh, the agent)")
    known_hosts: str | None = Field(default=None, description="known_hosts file the host key "
                                    "must be in (strict checking, no other file), e.g. "
                                    "/etc/watchtower/known_hosts")
    expected_system: str | None = Field(
        default=None, description="the NixOS toplevel store path the host should run "
        "(drift.generation); else looked up in manifest, e.g. /nix/store/...-nixos-system-web1")
    profile: str = Field(default="/nix/var/nix/profiles/system",
                         description="the system profile whose generations are listed")
    # drift.* / host.* (see watchtower/nixos): where the facts live on the host, so tests and
    # unusual layouts can point them elsewhere (a test store's NIX_* variables go in `env`).
    manifest: str | None = Field(default=None, description="JSON: host name -> toplevel path")
    current_system: str = Field(default="/run/current-system",
                                description="link to the running system on the host")
    booted_system: str = Field(default="/run/booted-system",
                               description="link to the system the host booted")
    env: dict[str, str] = Field(default_factory=dict, description="environment for commands")
    nix_env: str = Field(default="nix-env", description="nix-env command on the host")
    nix_store: str = Field(default="nix-store", description="nix-store command on the host")
    nix: str = Field(default="nix", description="nix command on the host")
    systemctl: str = Field(default="systemctl", description="systemctl command on the host")
    disk_paths: list[str] = Field(default_factory=lambda: ["/", "/nix"],
                                  description="paths whose file systems' free space is checked")
    units: list[str] = Field(default_factory=list, description="declared unit names or globs")
    connect_timeout: float = Field(default=10.0, gt=0, le=120, description="seconds an SSH "
                                   "connection may take to open (ConnectTimeout), e.g. 10")
    ssh_binary: str = Field(default="ssh", description="the OpenSSH client to run")
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
        description="seconds a detached switch may take to update current_system, e.g. 300")
    flake: str | None = Field(default=None, description="flake ref for nixos.redeploy")
    restartable_units: list[str] = Field(
        default_factory=list, description="units systemd.restart may restart (names or globs); "
        'empty: those in units, e.g. ["mastodon-*.service"]')
    store_sample: int = Field(
        default=500, ge=0, description="store paths of the running closure host.store-integrity "
        "verifies per sweep, rotating through the closure (0: all of it every sweep), e.g. 500")

    @field_validator("detach", mode="before")
    @classmethod
    def _detach(cls, value: Any) -> Any:
        """Older fleet files said `detach = true/false`; keep them valid."""
        if isinstance(value, bool):
            return "systemd-run" if value else "none"
        return value


class Endpoint(Tagged):
    name: str | None = Field(default=None, description="its target name; default: the URL's "
                             'host[:port], e.g. "status"')
    url: str = Field(description="an extra https:// URL the web checks probe, e.g. "
                     '"https://status.example.org/"')

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value, ("https",))


class DnsApi(Strict):
    name: str = Field(description='its name in results and references, e.g. "pdns"')
    kind: Literal["powerdns"] = Field(default="powerdns", description="the API's dialect")
    url: str = Field(description='the API\'s base URL, e.g. "http://127.0.0.1:8081"')
    api_key: Secret = Field(description="the API key (PowerDNS X-API-Key)")
    server_id: str = Field(default="localhost", description="the server in "
                           "/api/v1/servers/SERVER_ID (PowerDNS: localhost)")
    zones: list[str] = Field(default_factory=list, description="zones it manages: dns.records "
                             'fixes names in them through this API, e.g. ["example.org"]')

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


class Backup(Tagged):
    """A backup bucket: backup.freshness lists `prefix` and wants its newest object younger
    than `max_age` hours."""

    name: str = Field(description='its target name, e.g. "nightly"')
    s3_endpoint: str = Field(description='S3 API URL, e.g. "https://s3.example.org"')
    bucket: str = Field(min_length=1, description='the backup bucket, e.g. "backups"')
    prefix: str = Field(default="", description="key prefix the backup tool writes under")
    s3_region: str = Field(default="garage", description="SigV4 region of the S3 API")
    s3_access_key: Secret = Field(description="S3 access key id (read access suffices)")
    s3_secret_key: Secret = Field(description="S3 secret key")
    max_age: float = Field(
        default=25.0, gt=0, description="hours the newest object may be old: a daily backup "
        "plus Healthchecks' default grace of one hour, e.g. 25")

    @field_validator("s3_endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


class Heartbeat(Tagged):
    """A push heartbeat (Healthchecks style): a cron job or backup tool POSTs
    /ping/<token> (or /ping/<token>/fail) to `watchtower run`; silence for longer than
    `period` + `grace` is a failure."""

    name: str = Field(description='its target name, e.g. "db-dump"')
    token: Secret = Field(description="the ping token (a secret: whoever knows it can ping)")
    period: float = Field(default=86400.0, gt=0, description="seconds between expected pings; "
                          "Healthchecks' default is one day, e.g. 86400")
    grace: float = Field(default=3600.0, ge=0, description="seconds of lateness tolerated "
                         "after the period; Healthchecks' default is one hour, e.g. 3600")
