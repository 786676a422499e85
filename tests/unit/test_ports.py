"""Ports a command will listen on are tried before it starts anything (watchtower/cli/ports.py):
a taken one is one line naming the option, the port and what needs it; `lab` and `demo` stop
there, before the lab's directory, servers or store exist."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchtower.cli.ports import Wanted, require_free
from watchtower.daemon import DaemonError


@pytest.fixture()
def taken() -> Iterator[int]:
    """A TCP port on 127.0.0.1 someone else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_names_option_port_and_who_needs_it(taken: int) -> None:
    problem = Wanted("--dashboard-port", "127.0.0.1", taken, "the demo's dashboard").problem()
    assert problem is not None
    assert problem.startswith(f"--dashboard-port {taken}: cannot listen on 127.0.0.1 TCP port "
                              f"{taken} (")
    assert "the demo's dashboard needs it" in problem


def test_free_ports_and_port_zero_pass(taken: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    require_free([Wanted("--x", "127.0.0.1", free, "x", udp=True),
                  Wanted("--y", "127.0.0.1", 0, "y")])


def test_a_udp_only_owner_is_found_for_dns() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert Wanted("--dns-port", "127.0.0.1", port, "dns").problem() is None  # TCP only
        problem = Wanted("--dns-port", "127.0.0.1", port, "dns", udp=True).problem()
    assert problem is not None and f"UDP port {port}" in problem


def test_every_taken_port_is_one_line(taken: int) -> None:
    with pytest.raises(DaemonError) as err:
        require_free([Wanted.listen("--metrics-listen", f"127.0.0.1:{taken}", "run"),
                      Wanted("--dashboard-port", "127.0.0.1", taken, "dashboard")])
    lines = f"error: {err.value}".splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: --metrics-listen {taken}: ")
    assert lines[1].startswith(f"error: --dashboard-port {taken}: ")


@pytest.mark.parametrize("option", ["--dns-port", "--dashboard-port"])  # the first, the last
def test_demo_with_a_taken_port_stops_before_anything_starts(taken: int, option: str,
                                                             tmp_path: Path) -> None:
    state = tmp_path / "lab-state"
    # Every other port 0 (nothing to try): another lab on this machine changes nothing here.
    ports = {"--dns-port": "0", "--https-port": "0", "--metrics-listen": "127.0.0.1:0",
             "--dashboard-port": "0"}
    ports[option] = f"127.0.0.1:{taken}" if option == "--metrics-listen" else str(taken)
    proc = subprocess.run([sys.executable, "-m", "watchtower.cli", "demo", "--dir", str(state),
                           *(word for pair in ports.items() for word in pair)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {option} "), proc.stderr
    assert "needs it" in lines[0] and "Traceback" not in proc.stderr
    assert not state.exists()  # no lab, no store, no dashboard user


def test_lab_does_not_need_the_demo_ports(taken: int, tmp_path: Path) -> None:
    """`lab` runs neither `watchtower run` nor the dashboard: their ports are not its business."""
    from watchtower.cli.lab import _wanted_ports
    from watchtower.cli.main import build_parser

    args = build_parser().parse_args(["lab", "--metrics-listen", f"127.0.0.1:{taken}"])
    assert [w.option for w in _wanted_ports(args)] == ["--dns-port", "--https-port"]
    args = build_parser().parse_args(["demo", "--dashboard-port", str(taken)])
    assert [w.option for w in _wanted_ports(args)][-2:] == ["--metrics-listen",
                                                            "--dashboard-port"]
