"""End to end on the lab: `watchtower check` and `watchtower run` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from watchtower.store import Store

WATCHTOWER = [sys.executable, "-m", "watchtower.cli"]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WATCHTOWER, *args], capture_output=True, text=True, check=False,
                          timeout=timeout)


def test_check_prints_real_results_as_json(lab) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("check", "-c", str(lab.fleet_path), "--format", "json",
                   "--only", "dns.ns.count", "--only", "web.tls.certificate")
    assert proc.returncode == 1, proc.stderr  # the demo has failures
    results = json.loads(proc.stdout)["results"]
    keys = {"target", "check", "status", "summary", "evidence", "duration_ms"}
    assert all(keys <= set(r) for r in results)
    by = {(r["check"], r["target"]): r for r in results}
    assert by[("dns.ns.count", "alpha.test")]["status"] == "ok"
    assert by[("dns.ns.count", "bravo.test")]["status"] == "fail"
    port = lab.web.https_port
    assert by[("web.tls.certificate", f"video.bravo.test:{port}")]["summary"].startswith(
        "certificate expired")
    assert by[("web.tls.certificate", f"photos.charlie.test:{port}")]["status"] == "fail"
    assert by[("web.tls.certificate", f"social.alpha.test:{port}")]["status"] == "ok"
    evidence = by[("dns.ns.count", "alpha.test")]["evidence"]
    assert {ns["name"] for ns in evidence["nameservers"]} == {"ns1.alpha.test.",
                                                             "ns2.alpha.test."}


def test_check_filters_by_target_and_exit_zero_when_clean(lab) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("check", "-c", str(lab.fleet_path), "--target", "alpha.test",
                   "--only", "dns.ns.count", "--no-store")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "alpha.test" in proc.stdout and "bravo.test" not in proc.stdout
    bad = run_cli("check", "-c", str(lab.fleet_path), "--only", "no.such.check")
    assert bad.returncode == 2 and "matches no check" in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_schedules_stores_serves_metrics_and_stops_on_sigterm(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    text = lab.fleet_path.read_text()
    text = text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"')
    text = text.replace(f"sqlite:///{lab.dir / 'watchtower.db'}",
                        f"sqlite:///{tmp_path / 'run.db'}")
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(text)
    proc = subprocess.Popen([*WATCHTOWER, "run", "-c", str(fleet)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ})
    try:
        body = ""
        deadline = time.monotonic() + 30
        want = 'check="dns.ns.count",family="dns",status="fail",target="bravo.test"} 1.0'
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
                if want in body:  # results arrive domain by domain, in batches
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert want in body
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    store = Store(f"sqlite:///{tmp_path / 'run.db'}")
    states = {(s.check_id, s.target): s.status for s in store.current()}
    assert states[("dns.ns.count", "bravo.test")] == "fail"
    assert all(s.state != "running" for s in store.sweeps())
