"""Signed fetches under authorized fetch: watchtower's probe actor (its document and WebFinger
served from the lab front, as `watchtower run` or an operator's web server would) signs the
actor GETs; the Mastodon stand-in in secure mode resolves the key over HTTPS and verifies the
signature by Mastodon's rules, and PyPI's `httpsig` (an independent draft-cavage verifier)
verifies the very headers the probe sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import watchtower.checks.fedi as fedi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.web.labnet import LabNet, labnet, run_check, target_of
from watchtower.lab.apps import MastodonApp, PrefixRouter
from watchtower.lab.apps.activitypub import KeyResolver
from watchtower.net import httpsig
from watchtower.probe.actor import ProbeActor, ProbeActorApp
from watchtower.probe.clients import SweepClients

APEX, SOCIAL, MONITOR = "example.test", "social.example.test", "monitor.example.test"


class Recording:
    """Wraps a WSGI app and keeps the headers of every request it sees."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], headers))
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def signed_net(tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[LabNet, MastodonApp, Recording, Path]]:
    directory = tmp_path_factory.mktemp("signed")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = directory / "actor.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    masto = MastodonApp(APEX, web_domain=SOCIAL, probe_account="watchtower", secure_mode=True)
    recording = Recording(masto)
    sites: dict[str, Any] = {APEX: PrefixRouter([("/.well-known/", masto)]), SOCIAL: recording,
                             MONITOR: None}
    with labnet(directory, {h: a or masto for h, a in sites.items()}) as net:
        actor_url = net.url(MONITOR, "/actor")
        net.web.add_site(MONITOR, *_cert(net, MONITOR),
                         ProbeActorApp(ProbeActor(actor_url, key)), None)
        sweep = SweepClients(net.fleet())  # the stand-in fetches keys through the lab's resolver

        def get_json(url: str, accept: str) -> Any:
            resp = sweep.http.get(url, headers={"Accept": accept}, shared=False,
                                  deadline=time.monotonic() + 5)
            if resp.status != 200:
                raise httpsig.SignatureError(f"Public key not found for key {url}")
            return resp.json()

        masto.key_resolver = KeyResolver(get_json=get_json)
        try:
            yield net, masto, recording, key_file
        finally:
            sweep.close()


def _cert(net: LabNet, host: str) -> tuple[str, str]:
    issued = net.ca.issue([host], label=f"{host}-2")
    return str(issued.cert_path), str(issued.key_path)


def _run(net: LabNet, check: Any, key_file: Path | None, secure: bool = True) -> Any:
    federation = ({"actor_url": net.url(MONITOR, "/actor"),
                   "actor_key": {"$file": str(key_file)}} if key_file else {})
    fleet = net.fleet(services=[{"name": SOCIAL, "kind": "mastodon", "base_url": net.url(SOCIAL),
                                 "probe_account": f"watchtower@{APEX}", "secure_mode": secure}],
                      federation=federation)
    return run_check(fleet, check, target_of(fleet, SOCIAL, "mastodon"), timeout=10)


def test_signed_fetch_is_served_under_secure_mode(signed_net) -> None:  # type: ignore[no-untyped-def]
    net, _, recording, key_file = signed_net
    recording.seen.clear()
    actor = _run(net, fedi.Actor(), key_file)
    assert actor.status == "ok" and "(signed fetch)" in actor.summary, actor.summary
    assert actor.evidence["actor"]["status"] == 401
    fetch = _run(net, fedi.AuthorizedFetch(), key_file)
    assert fetch.status == "ok" and "signed fetch served" in fetch.summary, fetch.summary
    signed = [(m, p, h) for m, p, h in recording.seen if "signature" in h]
    assert signed, recording.seen
    from httpsig.verify import HeaderVerifier  # PyPI httpsig: an independent verifier

    public = httpsig.public_pem(httpsig.load_private_key(key_file.read_text())).encode()
    for method, path, headers in signed:
        verifier = HeaderVerifier(headers=headers, secret=public, method=method, path=path,
                                  required_headers=["(request-target)", "host", "date"],
                                  sign_header="signature")
        assert verifier.verify(), headers
    assert "PRIVATE KEY" not in str(actor.evidence)  # the private key never reaches evidence


def test_without_a_probe_actor_fields_are_not_checked(signed_net) -> None:  # type: ignore[no-untyped-def]
    net, _, _, _ = signed_net
    actor = _run(net, fedi.Actor(), None)
    assert actor.status == "ok" and "not checked" in actor.summary


def test_a_signature_the_server_rejects_fails(signed_net, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A key that is not the one the actor document publishes: Mastodon's verification fails,
    and both checks say so with the server's reason."""
    net, _, _, _ = signed_net
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(other.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    fetch = _run(net, fedi.AuthorizedFetch(), wrong)
    assert fetch.status == "fail" and "Verification failed" in fetch.summary, fetch.summary
    actor = _run(net, fedi.Actor(), wrong)
    assert actor.status == "fail" and "refused too" in actor.summary, actor.summary
