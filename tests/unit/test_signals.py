"""`watchtower run`'s signal loop (daemon.wait_for_signal), in a child process: SIGHUP reloads
and goes on, SIGTERM stops, and a burst of signals never wedges it (its handlers only note the
signal; an Event set inside a handler deadlocked an agent on a second SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CHILD = """
import signal, threading, time
from watchtower.daemon import wait_for_signal

def announce():  # once the handlers are in place: before them a signal kills or is lost
    while not callable(signal.getsignal(signal.SIGHUP)):  # SIG_DFL, or SIG_IGN under nohup
        time.sleep(0.01)
    print("ready", flush=True)

threading.Thread(target=announce, daemon=True).start()
wait_for_signal(lambda: print("reloaded", flush=True))
print("stopped", flush=True)
"""


def _child() -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_sighup_reloads_then_sigterm_stops() -> None:
    proc = _child()
    assert proc.stdout is not None
    os.kill(proc.pid, signal.SIGHUP)
    assert proc.stdout.readline().strip() == "reloaded"
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 0
    assert proc.stdout.read().split() == ["stopped"]


def test_a_burst_of_signals_stops_once_and_never_hangs() -> None:
    proc = _child()
    for _ in range(50):
        os.kill(proc.pid, signal.SIGHUP)
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.001)
        if proc.poll() is not None:
            break
    assert proc.wait(10) == 0
    assert proc.stdout is not None and proc.stdout.read().split()[-1] == "stopped"
