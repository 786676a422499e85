"""Shared plumbing for the real-server test harness.

Every server the integration tests talk to is a real program (Debian or PyPI), started as a
child process on loopback. This module holds what all of them need: finding the binary (and
skipping, or failing under CI, when it is missing), picking free ports, starting a process with
its output captured to log files, polling until it is ready, and stopping it for sure.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import pytest

# Which Debian package ships each tool we look for, so a failure tells the reader what to
# install rather than only what is missing. Keep in step with scripts/debian-packages.txt.
DEBIAN_PACKAGE: dict[str, str] = {
    "pdns_server": "pdns-server",
    "pdns_control": "pdns-server",
    "pdnsutil": "pdns-server",
    "/usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so": "pdns-backend-sqlite3",
    "sqlite3": "sqlite3",
    "dig": "dnsutils",
    "delv": "bind9-dnsutils",
    "dnssec-verify": "bind9-utils",
    "unbound": "unbound",
    "unbound-checkconf": "unbound",
    "unbound-control": "unbound",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
    "sshd": "openssh-server",
    "/usr/sbin/sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "nix-build": "nix-bin",
    "nix-instantiate": "nix-bin",
    "nix-env": "nix-bin",
    "nix-store": "nix-bin",
    "nix": "nix-bin",
    "postfix": "postfix",
    "postconf": "postfix",
    "dovecot": "dovecot-imapd",
    "/usr/lib/dovecot/imap": "dovecot-imapd",
    "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
    "opendkim": "opendkim",
    "opendkim-genkey": "opendkim-tools",
    "rspamd": "rspamd",
    "rspamadm": "rspamd",
    "/usr/lib/dovecot/managesieve": "dovecot-managesieved",
    "/usr/lib/dovecot/managesieve-login": "dovecot-managesieved",
    "/usr/lib/dovecot/modules/lib90_sieve_plugin.so": "dovecot-sieve",
    "openssl": "openssl",
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "runuser": "util-linux",
    "chromium": "chromium",
    "pdftoppm": "poppler-utils",
    "nginx": "nginx-light",
}

# Python distributions (installed with pip into the venv) behind importable modules/scripts.
PIP_PACKAGE: dict[str, str] = {
    "synapse": "matrix-synapse",
    "moto_server": "moto[server]",
    "moto": "moto[server]",
    "flask": "moto[server]",
    "flask_cors": "moto[server]",
    "yaml": "matrix-synapse",
    "trustme": "trustme",
    "boto3": "boto3",
    "psycopg": "psycopg[binary]",
    "dns": "dnspython",
    "dkim": "dkimpy",
}


def in_ci() -> bool:
    """CI sets CI=true; there a missing server is a broken machine, not an optional extra."""
    return os.environ.get("CI", "").strip().lower() == "true"


def find_tool(tool: str) -> str | None:
    """Resolve a tool name (searched in PATH plus the sbin dirs root has) or an absolute path.

    /usr/sbin is searched even when PATH lacks it, because a non-login shell or CI runner often
    drops it while the Debian daemons live there.
    """
    if os.sep in tool:
        return tool if os.path.exists(tool) else None
    search = os.pathsep.join(
        [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", *postgres_bindirs()]
    )
    return shutil.which(tool, path=search)


def postgres_bindirs() -> list[str]:
    """Debian keeps initdb/pg_ctl/postgres in /usr/lib/postgresql/VERSION/bin, newest first."""
    import glob

    dirs = glob.glob("/usr/lib/postgresql/*/bin")
    return sorted(
        dirs, key=lambda d: int(d.split("/")[4]) if d.split("/")[4].isdigit() else 0, reverse=True
    )


def _unavailable(message: str) -> None:
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require(*tools: str, why: str) -> None:
    """Skip (locally) or fail (under CI=true) when a binary the test needs is absent.

    Locally a developer may not have every daemon installed and should still be able to run the
    rest of the suite; in CI a skip would silently hide an untested feature, so it fails and
    names the Debian package to add to scripts/debian-packages.txt.
    """
    missing = [t for t in tools if find_tool(t) is None]
    if missing:
        parts = [f"{t} (Debian package {DEBIAN_PACKAGE.get(t, '?')})" for t in missing]
        _unavailable(f"{why}: missing {', '.join(parts)}")


def require_module(*modules: str, why: str) -> None:
    """Like require(), for Python modules that come from PyPI into the project venv."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        parts = [f"{m} (pip install {PIP_PACKAGE.get(m, m)!r})" for m in missing]
        _unavailable(f"{why}: missing Python module {', '.join(parts)}")


def venv_script(name: str) -> str | None:
    """A console script installed next to the running interpreter (the venv's bin dir).

    Preferred over PATH so the test run uses the venv's moto_server even when the venv is not
    activated.
    """
    import sys

    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def tool(name: str) -> str:
    """Absolute path of a required tool; raises FileNotFoundError when it is absent."""
    found = find_tool(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found (Debian package {DEBIAN_PACKAGE.get(name, '?')})"
        )
    return found


# ---------------------------------------------------------------------------------------------
# ports

_handed_out: set[tuple[str, int]] = set()
_port_lock = threading.Lock()


def _bindable(host: str, port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A TCP port (and UDP too with udp=True, for DNS) that is free on host right now.

    The kernel picks it (bind to port 0); we remember what we handed out so two servers started
    in the same session never get the same number before either has bound it.
    """
    with _port_lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
            if (host, port) in _handed_out:
                continue
            if udp and not _bindable(host, port, socket.SOCK_DGRAM):
                continue
            _handed_out.add((host, port))
            return port
    raise RuntimeError(f"no free port found on {host}")


def port_is_free(host: str, port: int, *, udp: bool = False) -> bool:
    """Whether host:port can be bound now (TCP, and UDP with udp=True)."""
    if not _bindable(host, port, socket.SOCK_STREAM):
        return False
    return not udp or _bindable(host, port, socket.SOCK_DGRAM)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    """Block until host:port accepts TCP connections; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not accept connections within {timeout:.0f}s")


def poll(
    probe: Callable[[], bool], timeout: float, interval: float = 0.05
) -> tuple[bool, BaseException | None]:
    """Call probe until it returns true or timeout passes; exceptions count as 'not yet'.

    Returns (succeeded, last exception) so callers can explain a failure.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            if probe():
                return True, None
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether pid is a live process; a zombie counts as dead.

    Daemons that detach (postfix master, postmaster) are reparented to PID 1, which may reap
    them late; kill(pid, 0) succeeds on such a zombie, so /proc is consulted too.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages that explain a failed start."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    text = data[-64 * 1024 :].decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# directories other users can reach

_shared_dirs: list[Path] = []


def shared_dir(prefix: str) -> Path:
    """A fresh directory under /tmp that unprivileged daemon users can traverse.

    pytest's tmp_path lives under /tmp/pytest-of-root, which is mode 0700, so a daemon that
    drops to its own user (postgres, postfix, dovecot's mail uid) cannot reach anything in it.
    Such servers keep their data here instead; it is removed at interpreter exit and by the
    server's own cleanup.
    """
    path = Path(tempfile.mkdtemp(prefix=f"watchtower-{prefix}-", dir="/tmp"))
    path.chmod(0o755)
    _shared_dirs.append(path)
    return path


def remove_shared_dir(path: Path) -> None:
    """Delete a directory made by shared_dir (whatever user owns the files inside)."""
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(ValueError):
        _shared_dirs.remove(path)


# ---------------------------------------------------------------------------------------------
# processes


class ServerError(RuntimeError):
    """A test server failed to start or answer; the message carries its log tail."""


_live: set[ManagedProcess] = set()
_cleanups: list[Callable[[], None]] = []


def register_cleanup(fn: Callable[[], None]) -> Callable[[], None]:
    """Run fn at interpreter exit unless unregistered first.

    Safety net for daemons that fork away from us (postfix, pg_ctl): if pytest dies without
    running fixture teardown they would otherwise outlive the test run and hold ports.
    """
    _cleanups.append(fn)
    return fn


def unregister_cleanup(fn: Callable[[], None]) -> None:
    with contextlib.suppress(ValueError):
        _cleanups.remove(fn)


@atexit.register
def _cleanup_at_exit() -> None:
    for fn in reversed(list(_cleanups)):
        with contextlib.suppress(Exception):
            fn()
    for proc in list(_live):
        with contextlib.suppress(Exception):
            proc.stop(grace=2.0)
    for path in list(_shared_dirs):
        shutil.rmtree(path, ignore_errors=True)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float = 60.0,
    user: str | None = None,
    group: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a helper command (argv list, never a shell string) and capture its text output.

    With check=True a failure raises ServerError carrying stdout and stderr, which is what one
    needs to see when a setup step such as initdb or pdnsutil goes wrong.
    """
    args = [os.fspath(a) for a in argv]
    proc = subprocess.run(
        args,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        user=user,
        group=group,
    )
    if check and proc.returncode != 0:
        raise ServerError(
            f"{' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


class ManagedProcess:
    """One long-running server process, with logs on disk and a guaranteed stop.

    The child gets its own session (process group) so that Ctrl-C in the terminal does not
    kill it behind pytest's back (teardown stops it in order instead) and so that stop() can
    signal the whole group, taking any worker children with it.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str,
        logdir: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        user: str | None = None,
        group: str | None = None,
        grace: float = 10.0,
    ) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.name = name
        self.logdir = Path(logdir)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.group = group
        self.grace = grace
        self.stdout_path = self.logdir / f"{name}.stdout.log"
        self.stderr_path = self.logdir / f"{name}.stderr.log"
        self.extra_logs: list[Path] = []
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Spawn the process; returns at once (use wait_ready to know it serves)."""
        if self.running:
            return self
        self.logdir.mkdir(parents=True, exist_ok=True)
        out: IO[bytes]
        err: IO[bytes]
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                user=self.user,
                group=self.group,
            )
        self.started_at = time.monotonic()
        _live.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def logs(self, lines: int = 40) -> str:
        """Tail of every log file of this process, labelled, for failure messages."""
        chunks = []
        for path in [self.stdout_path, self.stderr_path, *self.extra_logs]:
            text = tail(path, lines)
            if text:
                chunks.append(f"--- {path} ---\n{text}")
        return "\n".join(chunks) or "(no log output)"

    def wait_ready(
        self, probe: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05
    ) -> float:
        """Poll probe until true; raise ServerError with the log tail if it never is.

        Gives up early when the process has exited, since then it never will be ready.
        Returns the seconds since start(), which the harness reports as start-up time.
        """

        def check() -> bool:
            if not self.running:
                raise _Exited()
            return probe()

        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            try:
                if check():
                    return time.monotonic() - (self.started_at or 0.0)
            except _Exited:
                raise ServerError(
                    f"{self.name} exited with code {self.returncode} before it was ready "
                    f"(argv: {self.argv})\n{self.logs()}"
                ) from None
            except Exception as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.name} not ready after {timeout:.0f}s (last probe error: {last!r})\n"
                    f"{self.logs()}"
                )
            time.sleep(interval)

    def signal(self, sig: int = signal.SIGTERM, *, group: bool = True) -> None:
        """Send sig to the process group (all of the server's children too) or the leader."""
        if self.popen is None or self.popen.poll() is not None:
            return
        if not group:
            self.popen.send_signal(sig)
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.popen.send_signal(sig)

    def wait_stopped(self, grace: float | None = None) -> int | None:
        """Wait for an exit after a signal; SIGKILL the group when grace runs out. Reaps."""
        if self.popen is None:
            return None
        grace = self.grace if grace is None else grace
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        # Workers that left the group leader's death behind still belong to the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        _live.discard(self)
        return self.popen.returncode

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after the grace period; returns the exit code.

        The TERM goes to the main process only, so a master process (dovecot) shuts its
        workers down in order; whatever is left of the group afterwards is KILLed.
        """
        self.signal(signal.SIGTERM, group=False)
        return self.wait_stopped(grace)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} running={self.running}>"


class _Exited(Exception):
    pass


class Server:
    """Base for the per-server classes: context manager over start()/stop().

    startup_seconds records how long start() took, which the harness reports.
    """

    startup_seconds: float | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop for good and release what start() made (session teardown); default: stop()."""
        self.stop()

    def _timed_start(self, fn: Callable[[], None]) -> Self:
        t0 = time.monotonic()
        try:
            fn()
        except BaseException:
            with contextlib.suppress(Exception):
                self.close()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
