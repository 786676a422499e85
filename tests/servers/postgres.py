"""A throwaway PostgreSQL cluster (Debian postgresql) for the storage and reliability tests.

watchtower stores check history in PostgreSQL in production; SQLite hides whole classes of bugs
(types, transactions, reconnects after a server restart), so the storage layer is tested against
the real server. The cluster is initialised with trust auth on loopback and durability turned
off (fsync) because tests value speed over crash safety of their own scratch data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Self

from tests.servers.base import (
    Server,
    ServerError,
    free_port,
    pid_alive,
    poll,
    register_cleanup,
    remove_shared_dir,
    run,
    shared_dir,
    tail,
    tool,
    unregister_cleanup,
)


class PostgreSQL(Server):
    """One private cluster on a free loopback port with its socket in its own directory.

    Its data lives in a shared_dir() (not in workdir) because the server runs as the postgres
    user, who cannot traverse pytest's 0700 temp root; workdir gets a symlink to the log.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        dbname: str = "watchtower",
        user: str = "postgres",
        port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.dbname = dbname
        self.user = user
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.root: Path | None = None
        # As root the cluster must belong to the unprivileged postgres account (the server
        # refuses to run as root); as a normal user it simply runs as that user.
        self._os_user = "postgres" if os.geteuid() == 0 else None

    # -- paths --------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "PostgreSQL not started"
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None, "PostgreSQL not started"
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "PostgreSQL not started"
        return self.root / "postgresql.log"

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver); trust auth, so no password."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def libpq_url(self) -> str:
        """Plain libpq URL for psycopg.connect() and psql."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def env(self) -> dict[str, str]:
        """libpq environment pointing at this cluster (for psql, pg_dump, subprocesses)."""
        return {
            **os.environ,
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def _pg(
        self, *argv: str | Path, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        assert self.root is not None
        return run(
            list(argv),
            user=self._os_user,
            group=self._os_user,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C", "HOME": str(self.root)},
            check=check,
            timeout=timeout,
        )

    def start(self) -> Self:
        """initdb on first call, then pg_ctl start -w and create the database."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fresh = self.root is None
        if fresh:
            self.root = shared_dir("postgres")
            # Detached daemons outlive us unless stopped: make sure of it at interpreter exit.
            register_cleanup(self.close)
            self.socket_dir.mkdir()
            if self._os_user:
                os.chown(self.root, *_ids(self._os_user))
                os.chown(self.socket_dir, *_ids(self._os_user))
            self._pg(
                tool("initdb"),
                "-D",
                self.data_dir,
                "-U",
                self.user,
                "--auth=trust",
                "--no-sync",
                "--no-instructions",
                "-E",
                "UTF8",
                "--locale=C",
            )
            with open(self.data_dir / "postgresql.conf", "a") as conf:
                conf.write(
                    "\n# watchtower test harness\n"
                    f"listen_addresses = '{self.host}'\n"
                    f"port = {self.port}\n"
                    f"unix_socket_directories = '{self.socket_dir}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 200\n"
                    "log_min_messages = warning\n"
                )
            link = self.workdir / "postgresql.log"
            if not link.exists():
                link.symlink_to(self.log_path)
        self._pg_ctl("start")
        if fresh:
            self._pg(
                tool("createdb"),
                "-h",
                self.socket_dir,
                "-p",
                str(self.port),
                "-U",
                self.user,
                self.dbname,
            )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        proc = self._pg(
            tool("pg_ctl"),
            action,
            "-D",
            self.data_dir,
            "-l",
            self.log_path,
            "-w",
            "-t",
            "60",
            *extra,
            check=False,
        )
        if proc.returncode != 0:
            raise ServerError(
                f"pg_ctl {action} failed ({proc.returncode}): {proc.stdout}{proc.stderr}\n"
                f"--- {self.log_path} ---\n{tail(self.log_path)}"
            )

    @property
    def running(self) -> bool:
        """Whether the postmaster is up (pg_ctl status)."""
        if self.root is None or not self.data_dir.exists():
            return False
        return self._pg(tool("pg_ctl"), "status", "-D", self.data_dir, check=False).returncode == 0

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop (mode fast: abort open transactions); data stays for a later start()."""
        if self.running:
            self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        """Stop and start the server as an operator would; open connections are cut."""
        self._pg_ctl("restart", "-m", "fast")

    def crash(self) -> None:
        """SIGKILL the postmaster, like an OOM kill; start() then runs crash recovery."""
        pid = self.postmaster_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            poll(lambda: not pid_alive(pid), timeout=10)

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster, from postmaster.pid."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        """Stop and delete the cluster (session teardown)."""
        try:
            self.stop(mode="immediate")
        finally:
            if self.root is not None:
                # Any orphaned backend would keep files open; give it a moment after stop.
                time.sleep(0.05)
                unregister_cleanup(self.close)
                remove_shared_dir(self.root)
                self.root = None

    def psql(self, sql: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run SQL with psql (-X -A -t -v ON_ERROR_STOP=1) and return its output."""
        return run(
            [tool("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, *args],
            env=self.env,
            check=check,
        )


def _ids(user: str) -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid
