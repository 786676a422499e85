"""The lab's stand-in applications: WSGI callables that answer like the real services, each with
faults the lab can switch on and off while it runs.

`APP_KINDS` names every kind for configuration and the CLI; `all_faults()` lists, per kind, each
fault with a one-line description. Every fault name is stable: tests and demo scripts use them.
"""

from __future__ import annotations

from watchtower.lab.apps.common import (
    DEFAULT_STOP,
    HOSTILE_FAULTS,
    Fault,
    LabApp,
    PrefixRouter,
    Request,
    Response,
)
from watchtower.lab.apps.garage import GarageAdminApp
from watchtower.lab.apps.mastodon import MastodonApp
from watchtower.lab.apps.matrix import MatrixDelegationApp, MatrixFederationStandIn
from watchtower.lab.apps.peertube import PeerTubeApp
from watchtower.lab.apps.pixelfed import PixelfedApp
from watchtower.lab.apps.s3 import BackupBucketApp
from watchtower.lab.apps.web import HttpRedirectApp, MtaStsPolicyApp, StaticSiteApp

APP_KINDS: dict[str, type[LabApp]] = {
    "mastodon": MastodonApp,
    "peertube": PeerTubeApp,
    "pixelfed": PixelfedApp,
    "matrix-delegation": MatrixDelegationApp,
    "matrix-federation": MatrixFederationStandIn,
    "garage-admin": GarageAdminApp,
    "backup-bucket": BackupBucketApp,
    "static-site": StaticSiteApp,
    "mta-sts": MtaStsPolicyApp,
    "http-redirect": HttpRedirectApp,
}


def all_faults() -> dict[str, list[tuple[str, str]]]:
    """kind -> [(fault, description)], the app's own faults first, then the hostile ones."""
    return {
        kind: [(f.name, f.description) for f in cls.supported_faults()]
        for kind, cls in APP_KINDS.items()
    }


__all__ = [
    "APP_KINDS",
    "DEFAULT_STOP",
    "HOSTILE_FAULTS",
    "BackupBucketApp",
    "Fault",
    "GarageAdminApp",
    "HttpRedirectApp",
    "LabApp",
    "MastodonApp",
    "MatrixDelegationApp",
    "MatrixFederationStandIn",
    "MtaStsPolicyApp",
    "PeerTubeApp",
    "PixelfedApp",
    "PrefixRouter",
    "Request",
    "Response",
    "StaticSiteApp",
    "all_faults",
]
