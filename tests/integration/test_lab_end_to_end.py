"""End to end on the lab: `watchtower check` and `watchtower run` as a user runs them."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import tomli_w

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


def _fleet_with_a_silent_endpoint(lab, tmp_path: Path, port: int) -> Path:  # type: ignore[no-untyped-def]
    """The lab's fleet plus an endpoint that accepts TCP and never says a word: its TLS probe
    can only end at its (long) timeout, so a sweep including it is still running later."""
    doc = tomllib.loads(lab.fleet_path.read_text())
    doc["store"]["database"] = f"sqlite:///{tmp_path / 'check.db'}"
    doc["probe"]["tls_timeout"] = 300
    doc.setdefault("endpoints", []).append({"name": "silent", "url": f"https://127.0.0.1:{port}/"})
    doc.setdefault("checks", {})["web.tls.certificate"] = {"timeout": 300}
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


class Terminal:
    """A command in a pseudo-terminal (stdout and stderr both a tty), as a person runs it."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the command
            os.execve(argv[0], argv, {**os.environ, **(env or {})})
        self.output = b""

    def read_until(self, wanted: bytes, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.output:
            assert time.monotonic() < deadline, (wanted, self.output[-2000:])
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # the other end closed: the command ended
                    break
                self.output += data
        assert wanted in self.output, (wanted, self.output[-2000:])

    def wait(self, timeout: float = 60) -> int:
        self.read_until(b"", timeout)
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.output += data
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_check_on_a_terminal_shows_progress_and_ctrl_c_prints_what_finished(  # type: ignore[no-untyped-def]
        lab, tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        fleet = _fleet_with_a_silent_endpoint(lab, tmp_path, silent.getsockname()[1])
        term = Terminal([*WATCHTOWER, "check", "-c", str(fleet), "--only", "dns.ns.count",
                         "--only", "web.tls.certificate", "--target", "bravo.test",
                         "--target", "social.alpha.test:*", "--target", "silent"])
        # every probe but the silent one finishes; the progress line says so, on the terminal
        # three asked for, and what web.tls.certificate on social.alpha.test stands on: the
        # zone alpha.test served (dns.ns.authoritative, which stands on dns.ns.count there)
        total = 5
        term.read_until(f"{total - 1}/{total} probes".encode())
        os.kill(term.pid, signal.SIGINT)
        code = term.wait()
    text = term.output.decode()
    assert code == 130, text
    assert f"interrupted: {total - 1} of {total} probes finished (stored)" in text
    assert "\x1b[31mfail " in text and "\x1b[32mok   " in text  # statuses in colour
    assert "Problems: " in text and "dns.ns.count  bravo.test" in text
    assert "silent" not in text.split("probes", 1)[-1].split("interrupted")[0].replace(
        "Problems", "")  # the abandoned probe is not reported as a result
    store = Store(f"sqlite:///{tmp_path / 'check.db'}")
    try:
        assert [s.state for s in store.sweeps()] == ["interrupted"]
    finally:
        store.close()


def test_check_output_piped_or_json_has_no_progress_or_colour(lab) -> None:  # type: ignore[no-untyped-def]
    args = ["check", "-c", str(lab.fleet_path), "--only", "dns.ns.count", "--no-store"]
    piped = run_cli(*args)
    assert "\r" not in piped.stderr and "\x1b[" not in piped.stdout + piped.stderr
    assert "Problems: 1 fail" in piped.stdout
    term = Terminal([*WATCHTOWER, *args, "--format", "json"])
    assert term.wait() == 1
    text = term.output.decode()
    assert "probes ·" not in text and "\x1b[" not in text
    assert json.loads(text)["results"]
    term = Terminal([*WATCHTOWER, *args], env={"NO_COLOR": "1"})
    assert term.wait() == 1
    assert "\x1b[" not in term.output.decode()
