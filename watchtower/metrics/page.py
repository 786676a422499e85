"""The /metrics page: both renderers, cached for CACHE_SECONDS (several Prometheus replicas
scraping at once cost one render), served stale at most MAX_STALE when the store is slow."""

from __future__ import annotations

import gzip
import logging
import threading
import time

from prometheus_client import CollectorRegistry, generate_latest

from watchtower.metrics.collector import StateCollector
from watchtower.metrics.pairs import PairRenderer
from watchtower.probe.runtime import RuntimeStats
from watchtower.store import Store

log = logging.getLogger(__name__)


CACHE_SECONDS = 1.0

MAX_STALE = 120.0

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

class MetricsPage:
    """The whole `/metrics` body, rendered at most once per `cache_seconds`.

    Stale-while-revalidate: when the page is older than `cache_seconds` but younger than
    `max_stale`, the scrape gets it at once and a background thread renders the next one, so a
    scrape costs the transfer only, whatever the fleet size, and the data is at most one scrape
    interval (plus one render) old. Older than `max_stale` (no scrape for a while) or never
    rendered: the scrape waits for a fresh render. `max_stale=0` renders every scrape in line.
    """

    def __init__(self, store: Store, runtime: RuntimeStats | None = None, *,
                 cache_seconds: float = CACHE_SECONDS, max_stale: float = MAX_STALE) -> None:
        self.runtime = runtime or RuntimeStats()
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(store, self.runtime))
        self.pairs = PairRenderer(store)
        self.cache_seconds = cache_seconds
        self.max_stale = max_stale
        self.last_render_seconds = 0.0
        self._cached: tuple[float, bytes, bytes] | None = None
        self._render_lock = threading.Lock()
        self._refreshing = threading.Event()

    def _render_now(self) -> tuple[bytes, bytes]:
        with self._render_lock:
            started = time.monotonic()
            body = generate_latest(self.registry) + self.pairs.render().encode()
            # Compressed once per render (Prometheus asks for gzip): ~15x smaller transfers.
            packed = gzip.compress(body, compresslevel=1)
            finished = time.monotonic()
            self.last_render_seconds = finished - started
            # Age counts from the end of a render, so a render slower than cache_seconds does
            # not start the next one at once.
            self._cached = (finished, body, packed)
            return body, packed

    def _refresh_in_background(self) -> None:
        if self._refreshing.is_set():
            return
        self._refreshing.set()

        def work() -> None:
            try:
                self._render_now()
            except Exception as exc:
                log.error("rendering /metrics failed: %s", exc)
            finally:
                self._refreshing.clear()

        threading.Thread(target=work, name="metrics-render", daemon=True).start()

    def render(self) -> bytes:
        """The exposition text (uncompressed)."""
        return self.render_both()[0]

    def render_both(self) -> tuple[bytes, bytes]:
        """(plain, gzip) bodies of the current page."""
        cached = self._cached
        if cached is not None:
            age = time.monotonic() - cached[0]
            if age < self.cache_seconds:
                return cached[1], cached[2]
            if age < self.max_stale:
                self._refresh_in_background()
                return cached[1], cached[2]
        return self._render_now()
