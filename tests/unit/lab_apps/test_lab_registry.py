"""The registry of app kinds, and a guard that every declared fault is wired to something."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from watchtower.lab.apps import (
    APP_KINDS,
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
    StaticSiteApp,
    all_faults,
)
from watchtower.lab.apps.common import Request

from .wsgi_client import AP_ACCEPT, environ_for

AP = dict(AP_ACCEPT)
BEARER = {"Authorization": "Bearer t"}

# kind -> (factory, probes a check of that kind would send)
PROBES: dict[str, tuple[Callable[[], LabApp], list[tuple[str, dict[str, str]]]]] = {
    "mastodon": (
        lambda: MastodonApp("social.example.test"),
        [("https://social.example.test/.well-known/webfinger?resource="
          "acct:watchtower@social.example.test", {}),
         ("https://social.example.test/.well-known/host-meta", {}),
         ("https://social.example.test/.well-known/nodeinfo", {}),
         ("https://social.example.test/nodeinfo/2.0", {}),
         ("https://social.example.test/users/watchtower", AP),
         ("https://social.example.test/health", {}),
         ("https://social.example.test/api/v1/streaming/health", {}),
         ("https://social.example.test/api/v2/instance", {}),
         ("https://social.example.test/metrics", {})],
    ),
    "peertube": (
        lambda: PeerTubeApp("tube.example.test"),
        [("https://tube.example.test/.well-known/webfinger?resource="
          "acct:watchtower@tube.example.test", {}),
         ("https://tube.example.test/.well-known/host-meta", {}),
         ("https://tube.example.test/.well-known/nodeinfo", {}),
         ("https://tube.example.test/nodeinfo/2.0.json", {}),
         ("https://tube.example.test/accounts/watchtower", AP),
         ("https://tube.example.test/api/v1/config", {}),
         ("https://tube.example.test/api/v1/jobs/waiting?sort=createdAt", BEARER),
         ("https://tube.example.test/api/v1/jobs/failed?sort=-createdAt", BEARER)],
    ),
    "pixelfed": (
        lambda: PixelfedApp("pix.example.test"),
        [("https://pix.example.test/.well-known/webfinger?resource="
          "acct:watchtower@pix.example.test", {}),
         ("https://pix.example.test/.well-known/host-meta", {}),
         ("https://pix.example.test/.well-known/nodeinfo", {}),
         ("https://pix.example.test/api/nodeinfo/2.0.json", {}),
         ("https://pix.example.test/users/watchtower", AP),
         ("https://pix.example.test/horizon/api/stats", {}),
         ("https://pix.example.test/horizon/api/masters", {})],
    ),
    "matrix-delegation": (
        lambda: MatrixDelegationApp("example.test"),
        [("https://example.test/.well-known/matrix/server", {}),
         ("https://example.test/.well-known/matrix/client", {})],
    ),
    "matrix-federation": (
        lambda: MatrixFederationStandIn("example.test"),
        [("https://m.example.test/_matrix/federation/v1/version", {}),
         ("https://m.example.test/_matrix/key/v2/server", {}),
         ("https://m.example.test/_synapse/metrics", {}),
         ("https://m.example.test/_synapse/admin/v1/federation/destinations", BEARER)],
    ),
    "garage-admin": (
        lambda: GarageAdminApp("t", api="both"),
        [("http://127.0.0.1/health", {}),
         ("http://127.0.0.1/v2/GetClusterHealth", BEARER),
         ("http://127.0.0.1/v2/GetClusterStatus", BEARER),
         ("http://127.0.0.1/v1/status", BEARER),
         ("http://127.0.0.1/metrics", {})],
    ),
    "backup-bucket": (
        lambda: BackupBucketApp(),
        [("https://garage.example.test/backups?list-type=2&prefix=nightly/",
          {"Authorization": "AWS4-HMAC-SHA256 Credential=x"})],
    ),
    "static-site": (
        lambda: StaticSiteApp("www.example.test"),
        [("https://www.example.test/", {}),
         ("https://www.example.test/.well-known/security.txt", {})],
    ),
    "mta-sts": (
        lambda: MtaStsPolicyApp("example.test", ["mail.example.test"]),
        [("https://mta-sts.example.test/.well-known/mta-sts.txt", {})],
    ),
    "http-redirect": (
        lambda: HttpRedirectApp(),
        [("http://www.example.test/", {})],
    ),
}


class Recording(frozenset[str]):
    """A fault set that remembers which fault names the app asked about."""

    asked: set[str]

    def __contains__(self, item: object) -> bool:
        self.asked.add(str(item))
        return super().__contains__(item)


def test_every_kind_has_probes() -> None:
    assert set(PROBES) == set(APP_KINDS) == set(all_faults())
    for kind, (make, _) in PROBES.items():
        assert type(make()) is APP_KINDS[kind]


@pytest.mark.parametrize(
    ("kind", "fault"),
    [(kind, f.name) for kind, cls in APP_KINDS.items() for f in cls.FAULTS],
)
def test_each_fault_is_consulted_by_a_probe(kind: str, fault: str) -> None:
    make, probes = PROBES[kind]
    app = make()
    faults = Recording({fault})
    faults.asked = set()
    for url, headers in probes:
        response: Any = app.respond(Request.from_environ(environ_for(url, "GET", headers)),
                                    faults)
        assert 100 <= response.status < 600
    assert fault in faults.asked, f"no {kind} probe consults fault {fault}"
