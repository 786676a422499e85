"""matrix.* checks against a real Synapse (fixture `synapse`, plain HTTP) behind a TLS proxy
under the test CA, with delegation files served by the lab's HTTPS front and SRV/A records by
the lab's DNS server; the signed federation stand-in supplies the faults Synapse cannot show
(expired keys)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import watchtower.checks.matrix as matrix
import watchtower.checks.matrix_federation as fedcheck

from tests.integration.matrix.tlsproxy import TlsProxy
from tests.integration.web.labnet import LabNet, labnet, run_check, target_of
from watchtower.lab.apps import MatrixDelegationApp, MatrixFederationStandIn

FED = "fed.example.test"  # the TLS proxy in front of Synapse
STANDIN = "standin.example.test"


@pytest.fixture(scope="module")
def matrix_net(synapse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabNet, object, MatrixFederationStandIn]]:  # type: ignore[no-untyped-def]
    name = synapse.server_name  # e.g. matrix.example.test
    wk_real = MatrixDelegationApp(name)
    wk_other = MatrixDelegationApp("other.example.test")
    wk_bad = MatrixDelegationApp("bad.example.test", delegated_to="nowhere.example.test")
    standin = MatrixFederationStandIn("expired.example.test")
    wk_standin = MatrixDelegationApp("expired.example.test")
    sites = {name: wk_real, "other.example.test": wk_other, "bad.example.test": wk_bad,
             STANDIN: standin, "expired.example.test": wk_standin, FED: wk_real}
    directory = tmp_path_factory.mktemp("matrix")
    with labnet(directory, sites) as net:
        issued = net.ca.issue([FED], label="fed-proxy")
        with TlsProxy(str(issued.cert_path), str(issued.key_path),
                      (synapse.host, synapse.port)) as proxy:
            for wk in (wk_real, wk_other):
                wk.delegated_to = f"{FED}:{proxy.port}"
                wk.client_base_url = f"https://{FED}:{proxy.port}"
            wk_standin.delegated_to = f"{STANDIN}:{net.web.https_port}"
            net.proxy_port = proxy.port  # type: ignore[attr-defined]
            yield net, synapse, standin


def _fleet(net: LabNet, server_name: str):  # type: ignore[no-untyped-def]
    return net.fleet(services=[{"name": server_name, "kind": "synapse", "server_name": server_name,
                                "base_url": net.url(server_name)}])


def _run(net: LabNet, server_name: str, check):  # type: ignore[no-untyped-def]
    fleet = _fleet(net, server_name)
    return run_check(fleet, check, target_of(fleet, server_name, "synapse"), timeout=10)


def test_healthy_synapse(matrix_net) -> None:  # type: ignore[no-untyped-def]
    net, synapse, _ = matrix_net
    name = synapse.server_name
    disc = _run(net, name, matrix.Discovery())
    assert disc.status == "ok" and "well-known delegation" in disc.summary, disc.summary
    version = _run(net, name, matrix.Version())
    assert version.status == "ok" and version.summary.startswith("Synapse "), version.summary
    keys = _run(net, name, matrix.Keys())
    assert keys.status == "ok" and "verified (ed25519:" in keys.summary, keys.summary
    assert keys.evidence["keys"]["json"]["server_name"] == name
    client = _run(net, name, matrix.Client())
    assert client.status == "ok" and FED in client.summary, client.summary


def test_wrong_server_name(matrix_net) -> None:  # type: ignore[no-untyped-def]
    net, synapse, _ = matrix_net
    keys = _run(net, "other.example.test", matrix.Keys())
    assert keys.status == "fail"
    assert f"server_name '{synapse.server_name}' is not 'other.example.test'" in keys.summary


def test_bad_delegation(matrix_net) -> None:  # type: ignore[no-untyped-def]
    net, _, _ = matrix_net
    disc = _run(net, "bad.example.test", matrix.Discovery())
    assert disc.status == "fail" and "no way to resolve" in disc.summary, disc.summary
    version = _run(net, "bad.example.test", matrix.Version())
    assert version.status == "error" and "cannot resolve" in version.summary


def test_expired_keys_from_the_signed_stand_in(matrix_net) -> None:  # type: ignore[no-untyped-def]
    net, _, standin = matrix_net
    standin.faults = {"keys-expired"}
    try:
        keys = _run(net, "expired.example.test", matrix.Keys())
    finally:
        standin.faults = set()
    assert keys.status == "fail" and "in the past" in keys.summary, keys.summary
    assert _run(net, "expired.example.test", matrix.Keys()).status == "ok"
    standin.faults = {"keys-bad-signature"}
    try:
        bad = _run(net, "expired.example.test", matrix.Keys())
    finally:
        standin.faults = set()
    assert bad.status == "fail" and "does not verify" in bad.summary


def test_srv_discovery_and_cname_target(matrix_net) -> None:  # type: ignore[no-untyped-def]
    """No well-known: `_matrix-fed._tcp` SRV gives target and port; a CNAME target fails."""
    net, _, _ = matrix_net
    proxy_port = net.proxy_port  # type: ignore[attr-defined]
    net.add_records(f"_matrix-fed._tcp.viasrv IN SRV 10 5 {proxy_port} {FED}.",
                    f"_matrix._tcp.viacname IN SRV 10 5 {proxy_port} alias.example.test.",
                    "alias IN CNAME fed")
    disc = _run(net, "viasrv.example.test", matrix.Discovery())
    assert disc.status == "ok" and f"{FED}:{proxy_port} via SRV" in disc.summary, disc.summary
    version = _run(net, "viasrv.example.test", matrix.Version())
    assert version.status == "ok", version.summary
    cname = _run(net, "viacname.example.test", matrix.Discovery())
    assert cname.status == "fail" and "CNAME" in cname.summary, cname.summary


# -- matrix.federation.*: the real Synapse's metrics listener and admin API, and a second real
# Synapse (`synapse_peer`, server name 127.0.0.1:<TLS port>) it federates with.


def _fed_fleet(net: LabNet, synapse, peers: list[str], **settings: object):  # type: ignore[no-untyped-def]
    name = synapse.server_name
    return net.fleet(services=[{
        "name": name, "kind": "synapse", "server_name": name, "base_url": net.url(name),
        "metrics_url": synapse.metrics_url, "admin_url": synapse.url,
        "admin_token": {"$env": "WT_TEST_SYNAPSE_ADMIN"}, "federation_peers": peers}],
        **settings)


def _fed_run(net: LabNet, synapse, check, peers: list[str], **settings: object):  # type: ignore[no-untyped-def]
    fleet = _fed_fleet(net, synapse, peers, **settings)
    return run_check(fleet, check, target_of(fleet, synapse.server_name, "synapse"), timeout=20)


@pytest.fixture()
def admin_env(synapse, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    token = synapse.admin_token()
    monkeypatch.setenv("WT_TEST_SYNAPSE_ADMIN", token)
    return str(token)


def test_federation_backlog_from_real_metrics(matrix_net, admin_env) -> None:  # type: ignore[no-untyped-def]
    net, synapse, _ = matrix_net
    result = _fed_run(net, synapse, fedcheck.Backlog(), [])
    assert result.status == "ok", result.summary
    assert "PDUs and" in result.summary
    samples = result.evidence["metrics"]["samples"]
    assert "synapse_federation_transaction_queue_pending_pdus" in samples


def test_outbound_key_query_through_our_homeserver(matrix_net, synapse_peer, synapse_tls, admin_env) -> None:  # type: ignore[no-untyped-def]
    """Our Synapse fetches the second Synapse's keys over TLS federation; a peer nobody runs
    (a closed port) fails with the reason."""
    net, synapse, _ = matrix_net
    peer = synapse_peer.server_name
    result = _fed_run(net, synapse, fedcheck.Outbound(), [peer])
    assert result.status == "ok", result.summary
    assert peer in result.summary
    verified = result.evidence["peers"][0]["verified"]
    assert verified and verified[0].startswith("ed25519:")
    dead = _fed_run(net, synapse, fedcheck.Outbound(), ["127.0.0.1:1"])
    assert dead.status == "fail" and "holds no keys of 127.0.0.1:1" in dead.summary


def test_destinations_from_the_admin_api(matrix_net, synapse_peer, admin_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The admin API lists what Synapse's `destinations` table holds; rows are written there
    (as Synapse's retry limiter writes them) to make destinations fail without waiting for
    Synapse's back-off."""
    import sqlite3
    import time as _time

    net, synapse, _ = matrix_net
    peer = synapse_peer.server_name
    db = sqlite3.connect(synapse.workdir / "homeserver.db")
    now = int(_time.time() * 1000)
    rows = [("dead1.example.test", now, 600000, now - 3 * 86400000),
            ("dead2.example.test", now, 604800000, now - 9 * 86400000),
            (peer, now, 600000, now - 3600000), ("alive.example.test", 0, 0, None)]
    try:
        with db:
            db.executemany("INSERT INTO destinations (destination, retry_last_ts, retry_interval,"
                           " failure_ts) VALUES (?, ?, ?, ?)", rows)
        failing = _fed_run(net, synapse, fedcheck.Destinations(), [peer])
        assert failing.status == "fail", failing.summary
        assert f"declared peer {peer} failing for 1.0 h" in failing.summary
        assert failing.evidence["failing_count"] == 3 and failing.evidence["total"] == 4
        others = _fed_run(net, synapse, fedcheck.Destinations(), [])
        assert others.status == "warn" and "3 of 4 destinations failing" in others.summary
        monkeypatch.setenv("WT_TEST_SYNAPSE_ADMIN", "not-a-token")
        refused = _fed_run(net, synapse, fedcheck.Destinations(), [])
        assert refused.status == "error" and "refused the token" in refused.summary
    finally:
        with db:
            db.executemany("DELETE FROM destinations WHERE destination = ?",
                           [(r[0],) for r in rows])
        db.close()
    monkeypatch.setenv("WT_TEST_SYNAPSE_ADMIN", synapse.admin_token())
    healthy = _fed_run(net, synapse, fedcheck.Destinations(), [peer])
    assert healthy.status == "ok" and "0 of 0 destinations failing" in healthy.summary
