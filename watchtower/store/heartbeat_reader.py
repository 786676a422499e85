"""The read-only handle on heartbeats that probes get through their context (`ctx.heartbeats`):
it opens the store lazily (a sweep without heartbeat checks never does), once per database and
process (worker processes of a large sweep open their own). Apart from heartbeats.py, which the
Store itself is built from, so the two do not import each other."""

from __future__ import annotations

import threading
from typing import Any

from watchtower.store.facade import Store

_stores: dict[str, Store] = {}
_lock = threading.Lock()


class HeartbeatReader:
    """What a probe may know of heartbeats: the last ping of one (read-only)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def last_ping(self, name: str) -> dict[str, Any] | None:
        return _store_for(self.url).heartbeats.last_ping(name)


def _store_for(url: str) -> Store:
    """One Store per database for the probes of this process (opening one costs an engine)."""
    with _lock:
        if url not in _stores:
            _stores[url] = Store(url)
        return _stores[url]
