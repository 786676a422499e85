"""`watchtower demo` end to end: the lab, `watchtower run` and the dashboard come up, and the
banner naming the dashboard's URL is printed only once the dashboard answers there."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_until(proc: subprocess.Popen[bytes], wanted: bytes, timeout: float) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        assert time.monotonic() < deadline, seen[-3000:]
        assert proc.poll() is None, seen[-3000:]
        if select.select([proc.stdout], [], [], 0.2)[0]:
            seen += os.read(proc.stdout.fileno(), 65536)
    return seen


def test_demo_banner_comes_when_the_dashboard_answers(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchtower.cli", "demo", "--dir", str(tmp_path / "lab"),
         "--dns-port", "0", "--https-port", "0", "--metrics-listen", "127.0.0.1:0",
         "--dashboard-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = _read_until(proc, b"stop with Ctrl-C", timeout=240)
        url = f"http://127.0.0.1:{port}/"
        assert f"dashboard:      {url}".encode() in seen
        # At once, with no retry: the banner came after the dashboard's first answer.
        with urllib.request.urlopen(url + "_stcore/health", timeout=5) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
