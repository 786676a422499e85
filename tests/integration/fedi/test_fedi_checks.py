"""fedi.* checks against the Mastodon (split domain), PeerTube and Pixelfed stand-ins served by
the lab's HTTPS front under a test CA, with their faults switched on one at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import watchtower.checks.fedi as fedi

from tests.integration.web.labnet import LabNet, labnet, run_check, target_of
from watchtower.lab.apps import MastodonApp, PeerTubeApp, PixelfedApp, PrefixRouter

APEX, SOCIAL, VIDEO, PHOTOS = ("example.test", "social.example.test", "video.example.test",
                               "photos.example.test")


@pytest.fixture(scope="module")
def fedi_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabNet, dict[str, object]]]:
    masto = MastodonApp(APEX, web_domain=SOCIAL, probe_account="watchtower")
    apps = {"mastodon": masto, "peertube": PeerTubeApp(VIDEO), "pixelfed": PixelfedApp(PHOTOS)}
    sites = {APEX: PrefixRouter([("/.well-known/", masto)]), SOCIAL: masto,
             VIDEO: apps["peertube"], PHOTOS: apps["pixelfed"]}
    with labnet(tmp_path_factory.mktemp("fedi"), sites) as net:  # type: ignore[arg-type]
        yield net, apps


SERVICES = {
    "mastodon": (SOCIAL, f"watchtower@{APEX}"),
    "peertube": (VIDEO, f"watchtower@{VIDEO}"),
    "pixelfed": (PHOTOS, f"watchtower@{PHOTOS}"),
}


def _run(net: LabNet, kind: str, check, secure: bool = False):  # type: ignore[no-untyped-def]
    host, account = SERVICES[kind]
    fleet = net.fleet(services=[{"name": host, "kind": kind, "base_url": net.url(host),
                                 "probe_account": account, "secure_mode": secure}])
    return run_check(fleet, check, target_of(fleet, host, kind), timeout=8)


ALL = (fedi.WebFinger, fedi.HostMeta, fedi.NodeInfo, fedi.Actor, fedi.AuthorizedFetch,
       fedi.Health)


@pytest.mark.parametrize("kind", ["mastodon", "peertube", "pixelfed"])
def test_healthy_services_pass(fedi_net, kind) -> None:  # type: ignore[no-untyped-def]
    net, _ = fedi_net
    for check in ALL:
        result = _run(net, kind, check())
        assert result.status == "ok", (kind, check.meta.id, result.summary)
    nodeinfo = _run(net, kind, fedi.NodeInfo())
    assert nodeinfo.evidence["nodeinfo"]["software"] == kind


def test_split_domain_webfinger_follows_the_redirect(fedi_net) -> None:  # type: ignore[no-untyped-def]
    net, _ = fedi_net
    result = _run(net, "mastodon", fedi.WebFinger())
    assert result.evidence["webfinger"]["redirects"][0]["status"] == 301
    assert f"https://{SOCIAL}:{net.web.https_port}/users/watchtower" in result.summary


@pytest.mark.parametrize(("kind", "fault", "check", "status", "fragment"), [
    ("mastodon", "webfinger-wrong-subject", fedi.WebFinger, "fail", "does not match"),
    ("mastodon", "webfinger-no-self", fedi.WebFinger, "fail", "rel=self"),
    ("pixelfed", "webfinger-not-json", fedi.WebFinger, "fail", "invalid JSON"),
    ("peertube", "webfinger-no-cors", fedi.WebFinger, "warn", "Access-Control"),
    ("mastodon", "host-meta-no-lrdd", fedi.HostMeta, "warn", "no lrdd"),
    ("mastodon", "nodeinfo-schema-error", fedi.NodeInfo, "fail", "software.version"),
    ("peertube", "nodeinfo-missing", fedi.NodeInfo, "fail", "HTTP 404"),
    ("pixelfed", "actor-no-inbox", fedi.Actor, "fail", "no inbox"),
    ("mastodon", "actor-no-public-key", fedi.Actor, "fail", "publicKey"),
    ("peertube", "actor-no-shared-inbox", fedi.Actor, "warn", "sharedInbox"),
    ("mastodon", "actor-wrong-content-type", fedi.Actor, "fail", "text/html"),
    ("mastodon", "secure-mode-flipped", fedi.AuthorizedFetch, "fail", "should be served"),
    ("mastodon", "streaming-down", fedi.Health, "fail", "502"),
    ("peertube", "health-down", fedi.Health, "fail", "503"),
    ("pixelfed", "health-down", fedi.Health, "fail", "503"),
    ("mastodon", "invalid-utf8", fedi.NodeInfo, "fail", "UTF-8"),
    ("peertube", "redirect-loop", fedi.WebFinger, "fail", "redirect loop"),
    ("pixelfed", "huge-body", fedi.NodeInfo, "fail", "cut off"),
])
def test_faults(fedi_net, kind, fault, check, status, fragment) -> None:  # type: ignore[no-untyped-def]
    net, apps = fedi_net
    app = apps[kind]
    app.faults = {fault}
    try:
        result = _run(net, kind, check())
    finally:
        app.faults = set()
    assert result.status == status, result.summary
    assert fragment in result.summary


def test_secure_mode_declared(fedi_net) -> None:  # type: ignore[no-untyped-def]
    net, apps = fedi_net
    masto = apps["mastodon"]
    masto.secure_mode = True
    try:
        assert _run(net, "mastodon", fedi.AuthorizedFetch(), secure=True).status == "ok"
        assert _run(net, "mastodon", fedi.Actor(), secure=True).status == "ok"
        wrong = _run(net, "mastodon", fedi.AuthorizedFetch(), secure=False)
        assert wrong.status == "fail" and "refused" in wrong.summary
    finally:
        masto.secure_mode = False
