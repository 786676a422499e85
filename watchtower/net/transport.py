"""Command transports: how watchtower runs a command on a fleet host (locally or over SSH).

Host facts (generations, closures, failed units, free space) come from commands, so this is the
one place that starts processes for checks. Commands are always argv lists. Locally they go to
`subprocess.run` without a shell; over SSH the remote side has a shell whatever we do, so each
argv element is quoted with `shlex.quote` when the list is joined for it: a file name with a
space, a `;`, a newline or a leading `-` reaches the remote program as one literal argument.

SSH is the system OpenSSH client, locked down: this host's key only (`IdentitiesOnly`), a pinned
known_hosts file (`StrictHostKeyChecking=yes`, no global file, no user config), no prompts
(`BatchMode`), a connection timeout. A refused key, an unknown host key and an unreachable host
are `TransportError`s (the probe could not run), never a compliance verdict.

This module takes plain values (`HostAccess`); the probe's clients (watchtower/probe/clients.py)
map a `[[hosts]]` entry to one.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from watchtower.errors import ProbeError, ProbeTimeout

DEFAULT_TIMEOUT = 20.0
OUTPUT_CAP = 16 * 1024 * 1024  # a closure listing of a big system is a few MB at most
SSH_FAILED = 255  # ssh's own exit status: it could not run the command at all


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command left behind: exit status and its (text) output streams."""

    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


class TransportError(ProbeError):
    """The command could not be run on the host (unreachable, refused key, unknown host key)."""


class CommandFailed(ProbeError):
    """The command ran and failed; carries its result so callers can explain why."""

    def __init__(self, argv: Sequence[str], result: CommandResult) -> None:
        first = (result.stderr.strip() or result.stdout.strip()).splitlines()[:1]
        super().__init__(f"{argv[0]} exited {result.rc}" + (f": {first[0]}" if first else ""),
                         kind="command")
        self.argv = list(argv)
        self.result = result


class Transport(Protocol):
    """Runs argv commands on one host. Implementations: LocalTransport, SshTransport."""

    @property
    def where(self) -> str: ...

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> CommandResult: ...

    def check_output(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> str: ...

    def read_link(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> str | None: ...

    def read_file(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> str: ...


class _ArgvTransport:
    """File access built from argv commands, so it works the same on every transport."""

    where = "?"

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        raise NotImplementedError

    def check_output(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> str:
        """stdout of a command that must succeed; CommandFailed otherwise."""
        result = self.run(argv, timeout)
        if not result.ok:
            raise CommandFailed(argv, result)
        return result.stdout

    def read_link(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
        """The fully resolved target of `path` (`readlink -e`), or None when it does not exist."""
        result = self.run(["readlink", "-e", "--", path], timeout)
        if not result.ok:
            return None
        return result.stdout.rstrip("\n") or None

    def read_file(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The text of a file (`cat --`); CommandFailed when it cannot be read."""
        return self.check_output(["cat", "--", path], timeout)


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, str) or not argv:
        raise TypeError("a command is a non-empty argv list, never a shell string")
    return [str(a) for a in argv]


def _decode(data: bytes | None) -> str:
    return (data or b"")[:OUTPUT_CAP].decode("utf-8", "replace")


class LocalTransport(_ArgvTransport):
    """Runs commands on the watchtower machine itself (a host that is the appliance)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})
        self.where = "local"

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        args = _check_argv(argv)
        env = {**os.environ, **self.env} if self.env else None
        try:
            proc = subprocess.run(args, capture_output=True, timeout=timeout, env=env,
                                  stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            return CommandResult(127, "", f"{args[0]}: command not found")
        except PermissionError:
            return CommandResult(126, "", f"{args[0]}: permission denied")
        except subprocess.TimeoutExpired:
            raise ProbeTimeout(f"{args[0]} did not finish within {timeout:.1f}s") from None
        return CommandResult(proc.returncode, _decode(proc.stdout), _decode(proc.stderr))


@dataclass(frozen=True, slots=True)
class SshDestination:
    """user@host[:port] split into parts (IPv6 literals in brackets: user@[::1]:2222)."""

    user: str | None
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> SshDestination:
        user, _, rest = text.rpartition("@")
        port = 22
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            if tail.startswith(":"):
                port = _port(tail[1:], text)
        elif rest.count(":") == 1:
            host, _, port_text = rest.partition(":")
            port = _port(port_text, text)
        else:
            host = rest
        if not host or host.startswith("-") or (user and user.startswith("-")):
            raise ProbeError(f"bad SSH destination {text!r}", kind="input")
        return cls(user or None, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ProbeError(f"bad port in SSH destination {whole!r}", kind="input")
    return int(text)


def remote_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The one string the remote shell parses: every element quoted, env set through env(1)."""
    args = _check_argv(argv)
    for key in env or {}:
        if not key or "=" in key or not key.replace("_", "a").isalnum():
            raise ProbeError(f"bad environment variable name {key!r}", kind="input")
    prefix = ["env", *(f"{k}={v}" for k, v in (env or {}).items())] if env else []
    return shlex.join([*prefix, *args])


class SshTransport(_ArgvTransport):
    """Runs commands on a host over OpenSSH with a pinned host key and one dedicated key."""

    def __init__(
        self,
        destination: SshDestination,
        *,
        key_file: str,
        known_hosts: str,
        connect_timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
        ssh_binary: str = "ssh",
        control_dir: str | None = None,
    ) -> None:
        self.destination = destination
        self.control_dir = control_dir
        self.key_file = key_file
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self.env = dict(env or {})
        self.ssh_binary = ssh_binary
        self.where = str(destination)

    def ssh_argv(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs `argv` remotely (exposed for tests and dry runs)."""
        d = self.destination
        options = [
            "-F", "none",  # no user or system config can loosen what follows
            "-i", self.key_file,
            "-p", str(d.port),
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "UpdateHostKeys=no",
            "-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=2",
            "-o", "LogLevel=ERROR",
            "-T",
        ]
        if d.user:
            options += ["-l", d.user]
        return [self.ssh_binary, *options, *self._multiplex(), d.host, "--",
                remote_command(argv, self.env)]

    def _multiplex(self) -> list[str]:
        """One SSH connection shared by all commands of a probe (a handshake costs ~0.5 s)."""
        if self.control_dir is None:
            return []
        return ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_dir}/%C",
                "-o", "ControlPersist=30"]

    def close(self) -> None:
        """Stop the shared connection, if one was opened."""
        if self.control_dir is None or not os.path.exists(self.control_dir):
            return
        if not any(os.scandir(self.control_dir)):
            return
        d = self.destination
        argv = [self.ssh_binary, "-F", "none", "-p", str(d.port), *self._multiplex(),
                *(["-l", d.user] if d.user else []), "-O", "exit", d.host]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(argv, capture_output=True, timeout=5, stdin=subprocess.DEVNULL,
                           check=False)

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        local = self.ssh_argv(argv)
        try:
            proc = subprocess.run(local, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            raise TransportError(f"{self.ssh_binary} not found: install the OpenSSH client",
                                 kind="transport") from None
        except subprocess.TimeoutExpired:
            raise ProbeTimeout(f"{argv[0]} on {self.where} did not finish within "
                               f"{timeout:.1f}s") from None
        result = CommandResult(proc.returncode, _decode(proc.stdout), _decode(proc.stderr))
        if result.rc == SSH_FAILED:
            raise classify_ssh_failure(self.where, result.stderr)
        return result


_SSH_FAILURES = (
    ("Host key verification failed", "hostkey", "host key not in the pinned known_hosts"),
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "hostkey", "host key changed"),
    ("Permission denied", "auth", "key refused"),
    ("Too many authentication failures", "auth", "key refused"),
    ("Connection refused", "unreachable", "connection refused"),
    ("timed out", "timeout", "connection timed out"),
    ("No route to host", "unreachable", "no route to host"),
    ("Could not resolve hostname", "unreachable", "cannot resolve host name"),
    ("Network is unreachable", "unreachable", "network unreachable"),
    ("Connection closed", "unreachable", "connection closed"),
    ("Connection reset", "unreachable", "connection reset"),
)


def classify_ssh_failure(where: str, stderr: str) -> TransportError:
    """Turn ssh's exit 255 into an error that says which of the usual reasons it was."""
    for needle, kind, reason in _SSH_FAILURES:
        if needle.lower() in stderr.lower():
            return TransportError(f"ssh {where}: {reason}", kind=kind)
    detail = stderr.strip().splitlines()[-1:] or ["no message"]
    return TransportError(f"ssh {where}: failed ({detail[0][:200]})", kind="transport")


@dataclass(frozen=True, slots=True)
class HostAccess:
    """How to reach one host, as plain values: local when `ssh` is None, else OpenSSH.

    The key is either a file used where it lies (`key_file`) or its text (`key_text`, read from
    a secret by the caller), which `open_transport` writes to a private temporary file for as
    long as the transport is open. The text never appears in a repr, a log or an error.
    """

    name: str
    ssh: str | None = None
    known_hosts: str | None = None
    key_file: str | None = None
    key_text: str | None = field(default=None, repr=False)
    env: Mapping[str, str] = field(default_factory=dict)
    connect_timeout: float = 10.0
    ssh_binary: str = "ssh"


@contextlib.contextmanager
def open_transport(access: HostAccess) -> Iterator[Transport]:
    """The transport for one host: local when it has no `ssh`, else SSH (one multiplexed
    connection for as long as it is open, stopped on leaving)."""
    if access.ssh is None:
        yield LocalTransport(access.env)
        return
    destination = SshDestination.parse(access.ssh)
    if access.known_hosts is None:
        raise ProbeError(f"hosts {access.name}: known_hosts is required for SSH (host keys are "
                         "pinned, never trusted on first use)", kind="config")
    if access.key_file is None and access.key_text is None:
        raise ProbeError(f"hosts {access.name}: ssh_key is required for SSH", kind="config")
    with _key_file(access) as key_file, tempfile.TemporaryDirectory(prefix="wt-ssh-") as control:
        transport = SshTransport(destination, key_file=key_file, known_hosts=access.known_hosts,
                                 connect_timeout=access.connect_timeout, env=access.env,
                                 ssh_binary=access.ssh_binary, control_dir=control)
        try:
            yield transport
        finally:
            transport.close()


@contextlib.contextmanager
def _key_file(access: HostAccess) -> Iterator[str]:
    if access.key_file is not None:
        yield access.key_file
        return
    assert access.key_text is not None
    with tempfile.TemporaryDirectory(prefix="watchtower-ssh-") as tmp:
        path = os.path.join(tmp, "key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(access.key_text.strip() + "\n")
        yield path
