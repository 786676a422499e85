"""The store under faults: a locked SQLite file, a restarted PostgreSQL, a full disk.

Writes are retried; what cannot be written is reported (StoreError), never dropped silently;
nothing already stored is lost or corrupted. Each test prints the figure it measured.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from watchtower.model import Result, Status, Target, TargetKind, utcnow
from watchtower.store import Store, StoreError


def results(n: int, prefix: str = "z", evidence_size: int = 10) -> list[Result]:
    return [Result("dns.ns.count", "dns", Target(TargetKind.ZONE, f"{prefix}{i}.test"),
                   Status.OK, "fine", {"blob": f"{prefix}{i}" + "x" * evidence_size}, 1.0,
                   utcnow()) for i in range(n)]


def test_sqlite_busy_is_waited_out(tmp_path: Path) -> None:
    db = tmp_path / "wt.db"
    store = Store(f"sqlite:///{db}", busy_timeout=0.2, retries=10)
    holder = sqlite3.connect(db, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(1.0, holder.rollback).start()
    started = time.monotonic()
    store.record(results(5))
    waited = time.monotonic() - started
    print(f"\nwrite waited {waited:.2f} s for an exclusive lock held 1.0 s; 5/5 stored")
    assert len(store.current()) == 5 and waited >= 0.8


def test_sqlite_locked_for_good_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "wt.db"
    store = Store(f"sqlite:///{db}", busy_timeout=0.05, retries=2)
    store.record(results(3, "before"))
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="store unavailable"):
            store.record(results(3, "during"))
    finally:
        holder.rollback()
    assert {s.target for s in store.current()} == {"before0.test", "before1.test",
                                                   "before2.test"}
    store.record(results(3, "during"))  # and it works again once the lock is gone
    assert len(store.current()) == 6


def test_postgresql_restart_is_survived(postgres) -> None:  # type: ignore[no-untyped-def]
    url = postgres.fresh_database_url() if hasattr(postgres, "fresh_database_url") else postgres.url
    store = Store(url, retries=12)
    store.record(results(5, "a"))
    restart = threading.Thread(target=postgres.restart)
    restart.start()
    time.sleep(0.2)
    started = time.monotonic()
    store.record(results(5, "b"))  # during or right after the restart
    restart.join()
    print(f"\nwrite during a PostgreSQL restart completed after {time.monotonic() - started:.2f} s")
    assert len([s for s in store.current() if s.target[0] in "ab"]) == 10


def test_disk_full_is_a_clear_error_without_corruption(tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        store = Store(f"sqlite:///{mount / 'wt.db'}", retries=1, busy_timeout=0.1)
        store.record(results(10, "ok"))
        error = None
        for batch in range(200):
            try:
                store.record(results(20, f"b{batch}-", evidence_size=4000))
            except (StoreError, Exception) as exc:
                error = exc
                break
        assert error is not None, "the tiny disk never filled"
        assert "full" in str(error).lower() or "disk" in str(error).lower(), error
        print(f"\ndisk full after {batch} batches: {type(error).__name__}: {error}"[:300])
        store.close()
        check = sqlite3.connect(mount / "wt.db").execute("PRAGMA integrity_check").fetchone()
        assert check == ("ok",)
        again = Store(f"sqlite:///{mount / 'wt.db'}")
        targets = {s.target for s in again.current()}
        assert {f"ok{i}.test" for i in range(10)} <= targets
        again.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
