"""Which stand-in app serves which lab host, and the nginx-like front they sit behind.

Per lab domain `d` (see `LabDomain`):
- the fedi service host (`social.d` Mastodon, `video.d` PeerTube, `photos.d` Pixelfed);
- the apex `d`: a static site, Mastodon's split-domain WebFinger/host-meta redirects when the
  domain runs Mastodon, and the Matrix delegation files when it runs Matrix;
- `matrix.d` (every third domain): the signed federation stand-in;
- `garage.d` (every third domain, offset one): Garage's admin API;
- `mta-sts.d`: the MTA-STS policy;
- plain HTTP on every host: a redirect to HTTPS.

Every HTTPS host sits behind `Front`, which adds the domain's security headers (as the nginx in
front of a real service does) and serves its security.txt; the `site:*` faults break those.
Ports are only known once the web front runs, so `LabSites.bind` hands them to the apps that
print absolute URLs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchtower.lab.apps import (
    BackupBucketApp,
    GarageAdminApp,
    HttpRedirectApp,
    LabApp,
    MastodonApp,
    MatrixDelegationApp,
    MatrixFederationStandIn,
    MtaStsPolicyApp,
    PeerTubeApp,
    PixelfedApp,
    PrefixRouter,
    StaticSiteApp,
)
from watchtower.lab.cron import TOKEN_FILE as HEARTBEAT_TOKEN_FILE
from watchtower.lab.cron import HeartbeatPinger
from watchtower.lab.fleet import APP_ROLES, LabDomain
from watchtower.lab.https import WsgiApp

TOKEN_FILE = "garage-admin-token"  # noqa: S105 - a file name, not a secret
HORIZON_COOKIE_FILE = "horizon-cookie"
HORIZON_COOKIE = "laravel_session"


class Front:
    """Security headers and security.txt in front of an app, like the reverse proxy would."""

    def __init__(self, app: WsgiApp, site: StaticSiteApp) -> None:
        self.app = app
        self.site = site

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/.well-known/security.txt":
            return self.site(environ, start_response)
        extra = self.site.security_headers(frozenset(self.site.faults))

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            have = {k.lower() for k, _ in headers}
            return start_response(status, headers + [(k, v) for k, v in extra
                                                     if k.lower() not in have], *exc)

        return self.app(environ, start)


def _faults_for(domain: LabDomain, role: str, app: LabApp) -> set[str]:
    wanted = {f.split(":", 1)[1] for f in domain.faults if f.startswith(f"{role}:")}
    return wanted & set(app.fault_names())


class LabSites:
    """Builds every app of every lab domain once and says which serves which host."""

    def __init__(self, domains: list[LabDomain], directory: Path) -> None:
        token_path = directory / TOKEN_FILE
        if not token_path.exists():
            token_path.write_text(secrets.token_hex(24) + "\n")
            token_path.chmod(0o600)
        self.garage_token = token_path.read_text().strip()
        # The same lab secret is PeerTube's admin bearer token and Pixelfed's Horizon session.
        cookie_path = directory / HORIZON_COOKIE_FILE
        if not cookie_path.exists():
            cookie_path.write_text(f"{HORIZON_COOKIE}={self.garage_token}\n")
            cookie_path.chmod(0o600)
        self.horizon_cookie = cookie_path.read_text().strip()
        heartbeat_path = directory / HEARTBEAT_TOKEN_FILE
        if not heartbeat_path.exists():
            heartbeat_path.write_text(secrets.token_hex(16) + "\n")
            heartbeat_path.chmod(0o600)
        self.heartbeat_token = heartbeat_path.read_text().strip()
        self.apps: dict[tuple[str, str], LabApp] = {}
        self.redirect = HttpRedirectApp()
        self._delegations: list[tuple[LabDomain, MatrixDelegationApp]] = []
        for d in domains:
            self._build(d)

    def _set(self, domain: LabDomain, role: str, app: LabApp) -> LabApp:
        assert role in APP_ROLES, role
        app.faults = _faults_for(domain, role, app)
        self.apps[(domain.name, role)] = app
        return app

    def _build(self, d: LabDomain) -> None:
        kind = d.service_kind
        fedi: LabApp
        if kind == "mastodon":
            fedi = MastodonApp(d.name, web_domain=d.service_host, probe_account="watchtower")
        elif kind == "peertube":
            fedi = PeerTubeApp(d.service_host, probe_account="watchtower",
                               admin_token=self.garage_token)
        else:
            fedi = PixelfedApp(d.service_host, probe_account="watchtower",
                               horizon_cookie=self.horizon_cookie)
        self._set(d, "fedi", fedi)
        self._set(d, "site", StaticSiteApp(d.name))
        self._set(d, "mta-sts", MtaStsPolicyApp(d.name, [f"mail.{d.name}"]))
        if d.index == 0:
            self._set(d, "cron", HeartbeatPinger())
        if d.has_matrix:
            self._set(d, "matrix", MatrixFederationStandIn(d.name, admin_token=self.garage_token))
            wk = self._set(d, "matrix-wk", MatrixDelegationApp(d.name))
            assert isinstance(wk, MatrixDelegationApp)
            self._delegations.append((d, wk))
        if d.has_garage:
            self._set(d, "garage", GarageAdminApp(self.garage_token))
            self._set(d, "backup", BackupBucketApp())

    def app(self, domain: LabDomain, role: str) -> LabApp:
        """The app playing `role` on `domain` (to switch its faults while the lab runs)."""
        return self.apps[(domain.name, role)]

    def https_app(self, d: LabDomain, host: str) -> WsgiApp:
        site = self.app(d, "site")
        assert isinstance(site, StaticSiteApp)
        inner: WsgiApp
        if host == f"mta-sts.{d.name}":
            inner = self.app(d, "mta-sts")
        elif host == d.service_host:
            inner = self.app(d, "fedi")
        elif host == f"matrix.{d.name}":
            inner = self.app(d, "matrix")
        elif host == f"garage.{d.name}":  # the admin API, and S3 for the backup bucket
            inner = PrefixRouter([("/backups", self.app(d, "backup"))],
                                 default=self.app(d, "garage"))
        else:  # the apex
            routes: list[tuple[str, WsgiApp]] = []
            if d.service_kind == "mastodon":
                fedi = self.app(d, "fedi")
                routes += [("/.well-known/webfinger", fedi), ("/.well-known/host-meta", fedi)]
            if d.has_matrix:
                routes.append(("/.well-known/matrix/", self.app(d, "matrix-wk")))
            inner = PrefixRouter(routes, default=site)
        return Front(inner, site)

    def http_app(self, d: LabDomain, host: str) -> WsgiApp:
        return self.redirect

    def bind(self, https_port: int) -> None:
        """Tell the apps that print absolute URLs which port the HTTPS front listens on."""
        port = "" if https_port == 443 else f":{https_port}"
        self.redirect.https_port = https_port
        for d, wk in self._delegations:
            wk.delegated_to = f"matrix.{d.name}:{https_port}"
            wk.client_base_url = f"https://matrix.{d.name}{port}"

