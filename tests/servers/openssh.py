"""A private OpenSSH server (Debian openssh-server) for the remote-execution tests.

watchtower reaches fleet hosts over SSH with pinned host keys and a dedicated client key. The
tests need a real sshd to prove that path works, and that a wrong key or an unknown host key is
refused. Everything (host key, client keys, authorized_keys, known_hosts) is generated per
session; nothing in ~/.ssh or /etc/ssh is read or changed.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from tests.servers.base import ManagedProcess, Server, free_port, run, tool

SFTP_SERVER = "/usr/lib/openssh/sftp-server"


class SSHServer(Server):
    """sshd on a free 127.0.0.1 port that lets `user` in with client_key only.

    Runs as root (as a fleet host's sshd does); PermitRootLogin prohibit-password means keys
    only. StrictModes is off because the key files live under /tmp.
    """

    def __init__(self, workdir: Path, *, user: str | None = None, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.user = user or getpass.getuser()
        self.host_key = self.workdir / "ssh_host_ed25519_key"
        self.client_key = self.workdir / "client_ed25519"
        self.other_key = self.workdir / "other_ed25519"
        self.authorized_keys = self.workdir / "authorized_keys"
        self.known_hosts = self.workdir / "known_hosts"
        self.config_path = self.workdir / "sshd_config"
        self.process: ManagedProcess | None = None

    @property
    def host_public_key(self) -> str:
        """'ssh-ed25519 AAAA...' of the server (what a pinned known_hosts line holds)."""
        parts = (self.host_key.with_suffix(".pub")).read_text().split()
        return f"{parts[0]} {parts[1]}"

    @property
    def known_hosts_line(self) -> str:
        """The pinned line, in the [host]:port form OpenSSH uses for non-22 ports."""
        return f"[{self.host}]:{self.port} {self.host_public_key}"

    def _keygen(self, path: Path, comment: str) -> None:
        if not path.exists():
            run([tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
        path.chmod(0o600)

    def start(self) -> Self:
        """Generate keys and config, start sshd -D -e, wait for its SSH banner."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # sshd insists on its privilege-separation directory existing.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self._keygen(self.host_key, "watchtower-test-host")
        self._keygen(self.client_key, "watchtower-test-client")
        self._keygen(self.other_key, "watchtower-test-unauthorized")
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.known_hosts.write_text(self.known_hosts_line + "\n")
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            f"HostKey {self.host_key}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PermitUserEnvironment no",
            "X11Forwarding no",
            "PrintMotd no",
            "LogLevel VERBOSE",
            # The suite opens many short connections in bursts; the default 10:30:100 would
            # randomly drop some of them.
            "MaxStartups 100",
            "MaxSessions 50",
            f"AllowUsers {self.user}",
        ]
        if os.path.exists(SFTP_SERVER):
            lines.append(f"Subsystem sftp {SFTP_SERVER}")
        self.config_path.write_text("\n".join(lines) + "\n")
        sshd = tool("sshd")
        run([sshd, "-t", "-f", self.config_path])
        self.process = ManagedProcess(
            [sshd, "-D", "-e", "-f", self.config_path],
            name="sshd",
            logdir=self.workdir,
            grace=5.0,
        ).start()
        self.process.wait_ready(self._banner, timeout=20)

    def _banner(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-2.0-")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    # -- client side --------------------------------------------------------------------------

    def client_options(self, key: Path | None = None) -> list[str]:
        """ssh -o options for a locked-down client: this key only, pinned host key, no prompts."""
        return [
            "-F",
            "none",
            "-i",
            str(key or self.client_key),
            "-p",
            str(self.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
        ]

    def ssh_argv(self, *command: str, key: Path | None = None) -> list[str]:
        """argv for `ssh ... user@127.0.0.1 -- command` (key defaults to client_key)."""
        return [
            tool("ssh"),
            *self.client_options(key),
            f"{self.user}@{self.host}",
            "--",
            *command,
        ]

    def ssh(
        self, *command: str, key: Path | None = None, input: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run command over SSH and return the CompletedProcess (never raises on exit code)."""
        return subprocess.run(
            self.ssh_argv(*command, key=key),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def authorize(self, public_keys: Sequence[str]) -> None:
        """Replace authorized_keys (the client key is kept) for key-rotation tests."""
        own = self.client_key.with_suffix(".pub").read_text().strip()
        self.authorized_keys.write_text("\n".join([own, *public_keys]) + "\n")
