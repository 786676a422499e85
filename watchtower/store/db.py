"""The database connection every query module of the store shares: one engine, its SQLite
pragmas, and the retry that turns a locked or briefly unavailable database into waiting.

Why one `Database` object: the engine, its pragmas and the retry policy are one fact each, so
every room of the store (results, history, alerts, remediation, reports, dashboard reads,
heartbeats, /metrics reads, retention) writes through the same retry and sees the same
connection settings.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import create_engine

log = logging.getLogger(__name__)

T = TypeVar("T")
CHUNK = 500  # values per IN (...) list: well under SQLite's and PostgreSQL's bind limits


class StoreError(RuntimeError):
    """The store could not be reached or written after retries: reported, never ignored."""


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; everything in watchtower is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Database:
    """The engine (SQLite file or PostgreSQL URL) and the retry around every transaction."""

    def __init__(self, url: str, *, retries: int = 8, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.retries = retries
        self.busy_timeout = busy_timeout
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect",
                         lambda conn, _rec: _sqlite_pragmas(conn, int(busy_timeout * 1000)))

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def retry(self, fn: Callable[[], T]) -> T:
        """Retry on a locked or briefly unavailable database; raise StoreError at the end."""
        delay = 0.05
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except OperationalError as exc:
                if attempt == self.retries:
                    raise StoreError(f"store unavailable after {attempt + 1} attempts: "
                                     f"{exc.orig}") from exc
                log.warning("store busy or unavailable (%s); retrying in %.2fs", exc.orig, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, busy_ms: int) -> None:
    cur = dbapi_conn.cursor()
    # Takes effect only on a new, empty file (before step 1 creates tables): retention's freed
    # pages can then go back to the file system (`PRAGMA incremental_vacuum` after a prune). An
    # older file keeps its mode until `watchtower store prune --vacuum` rebuilds it.
    cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def shown_url(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
