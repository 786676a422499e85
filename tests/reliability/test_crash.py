"""kill -9 of `watchtower run` in the middle of a sweep, then a restart: every result that was
reported as stored is still there, the database is consistent, the interrupted sweep is marked,
and the schedule resumes at once."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.unit.net.helpers import tcp_server
from watchtower.store import Store

RUN = [sys.executable, "-m", "watchtower.cli", "run", "-c"]


def _hang(conn) -> None:  # type: ignore[no-untyped-def]
    time.sleep(30)


def _fleet(lab, tmp: Path, hung_ports: list[int]) -> Path:  # type: ignore[no-untyped-def]
    text = lab.fleet_path.read_text()
    text = text.replace(f"sqlite:///{lab.dir / 'watchtower.db'}", f"sqlite:///{tmp / 'wt.db'}")
    text = re.sub(r'metrics_listen = "[^"]*"', 'metrics_listen = "127.0.0.1:0"', text)
    text = text.replace("[probe]\n", '[daemon]\nlog_level = "debug"\n\n[probe]\nconcurrency = 2\n', 1)
    text += "".join(f'\n[[endpoints]]\nurl = "https://127.0.0.1:{p}/"\n' for p in hung_ports)
    text += '\n[checks."web.tls.certificate"]\ntimeout = 3\ninterval = 5\n'
    text += '\n[checks."dns.ns.count"]\ninterval = 5\n'
    path = tmp / "fleet.toml"
    path.write_text(text)
    return path


def _wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_kill_9_mid_sweep_loses_nothing_and_resumes(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with tcp_server(_hang) as p1, tcp_server(_hang) as p2, tcp_server(_hang) as p3, \
            tcp_server(_hang) as p4:
        fleet = _fleet(lab, tmp_path, [p1, p2, p3, p4])
        log = tmp_path / "run1.log"
        with log.open("w") as out:
            proc = subprocess.Popen([*RUN, str(fleet)], stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "CI": os.environ.get("CI", "")})
        try:
            assert _wait(lambda: "stored" in log.read_text(), 30), log.read_text()[-2000:]
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        reported = max(int(m) for m in re.findall(r"stored \d+ results \((\d+) so far\)",
                                                  log.read_text()))
        db = tmp_path / "wt.db"
        assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)
        store = Store(f"sqlite:///{db}")
        kept = store.probes_stored()
        print(f"\nkilled mid-sweep: {reported} results reported stored, {kept} in the store")
        assert kept >= reported
        assert any(s.state == "running" for s in store.sweeps())

        last_before = max(s.id or 0 for s in store.sweeps())
        log2 = tmp_path / "run2.log"
        restarted = time.monotonic()
        with log2.open("w") as out:
            proc = subprocess.Popen([*RUN, str(fleet)], stdout=out, stderr=subprocess.STDOUT)
        try:
            # A sweep with results: a schedule whose checks apply to no target completes too,
            # with nothing stored, and may come first.
            resumed = _wait(lambda: any(s.state == "done" and (s.id or 0) > last_before
                                        and s.total > 0
                                        for s in Store(f"sqlite:///{db}").sweeps()), 40)
            took = time.monotonic() - restarted
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        text = log2.read_text()
        assert resumed, text[-3000:]
        print(f"restart to first completed sweep: {took:.1f} s (interval 5 s)")
        assert "interrupted by the last stop" in text
        final = Store(f"sqlite:///{db}")
        assert final.probes_stored() > kept
        assert any(s.state == "interrupted" for s in final.sweeps())
        assert proc.returncode == 0
