"""`watchtower run`'s listener (the real wsgiref server it starts): Healthchecks-style pings
stored and judged by heartbeat.ping, unknown tokens refused without a trace, and the probe actor's
document and WebFinger answer served for servers that verify our signatures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.web.labnet import run_check, target_of
from watchtower.config import parse_fleet
from watchtower.daemon.http import serve_http
from watchtower.net import httpsig
from watchtower.probe import registry
from watchtower.store import Store

TOKEN = "hb-0123456789abcdef"


@pytest.fixture()
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "actor.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    monkeypatch.setenv("WT_TEST_HB", TOKEN)
    database = f"sqlite:///{tmp_path / 'wt.db'}"
    doc = {"store": {"database": database}, "metrics": {"listen": "127.0.0.1:0"},
           "federation": {"actor_url": "http://127.0.0.1/watchtower/actor",
                          "actor_key": {"$file": str(key_file)}},
           "heartbeats": [{"name": "nightly", "token": {"$env": "WT_TEST_HB"}, "period": 1,
                           "grace": 0}]}
    fleet = parse_fleet(doc)
    store = Store(database)
    server = serve_http(fleet).attach(store)
    try:
        yield {"url": f"http://127.0.0.1:{server.port}", "fleet": fleet, "store": store,
               "key": key}
    finally:
        server.shutdown()
        store.close()


def _check(fleet: Any) -> Any:
    return run_check(fleet, registry.checks()["heartbeat.ping"],
                     target_of(fleet, "nightly", "heartbeat"))


def test_pings_are_stored_and_judged(daemon: dict[str, Any]) -> None:
    url, fleet = daemon["url"], daemon["fleet"]
    assert str(_check(fleet).status) == "warn"  # never pinged
    assert requests.post(f"{url}/ping/{TOKEN}", timeout=5).status_code == 200
    fresh = _check(fleet)
    assert str(fresh.status) == "ok", fresh.summary
    assert requests.post(f"{url}/ping/{TOKEN}/fail", timeout=5).status_code == 200
    failed = _check(fleet)
    assert str(failed.status) == "fail" and "reported failure" in failed.summary
    requests.post(f"{url}/ping/{TOKEN}", timeout=5)
    time.sleep(1.2)  # the period (1 s) passes with no ping
    missed = _check(fleet)
    assert str(missed.status) == "fail" and "no ping for" in missed.summary, missed.summary
    assert missed.evidence["last"]["pings"] == 3 and missed.evidence["last"]["last_at"]
    assert TOKEN not in str(missed.evidence)


def test_unknown_token_is_404_and_changes_nothing(daemon: dict[str, Any]) -> None:
    url, store = daemon["url"], daemon["store"]
    for path in (f"/ping/{TOKEN}x", "/ping/", f"/ping/{TOKEN[:-1]}/fail"):
        assert requests.post(url + path, timeout=5).status_code == 404, path
    assert requests.post(f"{url}/ping/{TOKEN}/other", timeout=5).status_code == 400
    assert store.heartbeats.last_ping("nightly") is None
    assert requests.get(f"{url}/metrics", timeout=5).status_code == 200  # still /metrics


def test_probe_actor_is_served(daemon: dict[str, Any]) -> None:
    url, key = daemon["url"], daemon["key"]
    actor = requests.get(f"{url}/watchtower/actor", timeout=5)
    assert actor.status_code == 200 and "activity+json" in actor.headers["content-type"]
    doc = actor.json()
    assert doc["publicKey"]["id"] == "http://127.0.0.1/watchtower/actor#main-key"
    assert doc["publicKey"]["publicKeyPem"] == httpsig.public_pem(key)
    jrd = requests.get(f"{url}/.well-known/webfinger",
                       params={"resource": "acct:watchtower@127.0.0.1"}, timeout=5).json()
    assert jrd["links"][0]["href"] == "http://127.0.0.1/watchtower/actor"
    assert "PRIVATE" not in actor.text


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    """`watchtower run` binds its listener first: a taken port is one line naming it, exit 2,
    and neither the store nor a sweep was started."""
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "wt.db"
        fleet = tmp_path / "fleet.toml"
        fleet.write_text(f'[store]\ndatabase = "sqlite:///{db}"\n'
                         f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        proc = subprocess.run([sys.executable, "-m", "watchtower.cli", "run", "-c", str(fleet)],
                              capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"[metrics] listen = 127.0.0.1:{port}" in lines[0] and "Traceback" not in proc.stderr
    assert not db.exists()
