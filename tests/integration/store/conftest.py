"""The store on both engines, for tests of the store's rooms: `any_store` is a fresh SQLite
file, then the session's real PostgreSQL (every store table dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from watchtower.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wt.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    s = Store(url)
    yield s
    if request.param == "postgresql":
        with s.engine.begin() as conn:
            for table in SQLModel.metadata.tables:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    s.close()
