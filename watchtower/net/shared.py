"""One computation per question, shared by every probe of a sweep that asks it.

The DNS resolver, the SMTP prober and the HTTP client all memoise by question: concurrent
askers wait for the first one's answer instead of sending their own (in-flight
de-duplication), and later askers get the stored answer. What differs is kept as options:
whether failures are remembered (a dead DNS server should cost one timeout per question; an
HTTP failure is retried by the next check, whose deadline may be longer) and whether the
store is bounded (HTTP bodies can be large; DNS answers of one sweep are small).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

T = TypeVar("T")


class SharedCalls:
    """Thread-safe map of key -> Future; the first asker computes, the others wait.

    One map holds every kind of answer (a DNS answer, a server reply, ...); the key decides
    which, so `get` casts the stored result back to the type of the caller's `compute`."""

    def __init__(self, *, max_entries: int | None = None, keep_errors: bool = True) -> None:
        self._lock = threading.Lock()
        self._futures: OrderedDict[Hashable, Future[Any]] = OrderedDict()
        self.max_entries = max_entries
        self.keep_errors = keep_errors
        self.hits = 0
        self.misses = 0

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._futures)

    def get(self, key: Hashable, compute: Callable[[], T], *, wait: float | None = None
            ) -> T:
        """The answer for `key`, computing it here if nobody has. A waiter gives up after
        `wait` seconds with TimeoutError (its own deadline, not the computing probe's)."""
        with self._lock:
            fut = self._futures.get(key)
            owner = fut is None
            if fut is None:
                fut = Future()
                self._futures[key] = fut
                self.misses += 1
                if self.max_entries is not None and len(self._futures) > self.max_entries:
                    self._futures.popitem(last=False)
            else:
                self.hits += 1
                if self.max_entries is not None:
                    self._futures.move_to_end(key)
        if owner:
            try:
                fut.set_result(compute())
            except BaseException as exc:
                fut.set_exception(exc)
                if not self.keep_errors:
                    with self._lock:
                        if self._futures.get(key) is fut:
                            del self._futures[key]
            return cast(T, fut.result())
        return cast(T, fut.result(timeout=wait))
