"""What `watchtower check` shows a person at a terminal: a progress line while the sweep runs,
statuses in colour, the problems summarised at the end, and what finished when Ctrl-C stops it.

None of it reaches a pipe or JSON output: progress is drawn only when both stdout and stderr
are terminals and the table is printed, colour only on a terminal and never with `NO_COLOR`
set (https://no-color.org) or `TERM=dumb`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from watchtower.model import Result, Status

#: ANSI SGR colours, one per status, as the dashboard draws them (green, amber, purple, red).
COLOURS = {Status.OK: "32", Status.WARN: "33", Status.ERROR: "35", Status.FAIL: "31"}
#: Problem statuses in the order the summary lists them: proven failures first.
PROBLEM_ORDER = (Status.FAIL, Status.ERROR)
#: Targets named per line of the summary before "and N more".
SUMMARY_TARGETS = 4


def colour_wanted(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return stream.isatty() and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def paint(text: str, status: Status, colour: bool) -> str:
    return f"\x1b[{COLOURS[status]}m{text}\x1b[0m" if colour else text


class Progress:
    """`done/total probes · rate/s · about N s left · K fail or error so far` on stderr,
    redrawn in place a few times a second by a thread of its own (so a sweep stuck on slow
    probes still shows it is alive), from half a second in (a quick check shows nothing);
    `close()` stops it and erases the line before the table is printed."""

    DELAY = 0.5  # seconds before the first line
    REDRAW = 0.25  # seconds between redraws

    def __init__(self, total: int, stream: TextIO, *, enabled: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled and total > 0
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.problems = 0
        self._width = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, result: Result) -> None:
        """Count one finished probe (the sweep's `on_arrival`: as it arrives, not a batch later,
        so the last slow probes of a sweep are counted when they end)."""
        with self._lock:
            self.done += 1
            self.problems += result.status.is_problem

    def start(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="watchtower-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        if self._stop.wait(self.DELAY):
            return
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.REDRAW)

    def tick(self) -> None:
        with self._lock:
            text = self.line(self.clock())
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
            self._width = len(text)

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.done}/{self.total} probes", f"{rate:.0f}/s"]
        # The first few results say little about the rest (the slowest probes come last).
        if max(5, self.total // 50) <= self.done < self.total:
            parts.append(f"about {_duration((self.total - self.done) / rate)} left")
        if self.problems:
            parts.append(f"{self.problems} fail or error so far")
        return " · ".join(parts)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"


def problem_summary(results: list[Result], colour: bool) -> list[str]:
    """The fail and error results grouped by check: one line per (status, check) with the
    targets it hit, most widespread first, so 2,000 lines of table end in what to look at."""
    groups: dict[tuple[Status, str], list[str]] = {}
    for r in results:
        if r.status.is_problem:
            groups.setdefault((r.status, r.check), []).append(r.target.name)
    if not groups:
        return []
    counts = {s: sum(len(v) for (st, _), v in groups.items() if st is s) for s in PROBLEM_ORDER}
    lines = ["Problems: " + ", ".join(f"{counts[s]} {s}" for s in PROBLEM_ORDER if counts[s])]
    width = max(len(check) for _, check in groups)
    for (status, check), targets in sorted(
            groups.items(), key=lambda g: (PROBLEM_ORDER.index(g[0][0]), -len(g[1]), g[0][1])):
        shown = ", ".join(targets[:SUMMARY_TARGETS])
        more = len(targets) - SUMMARY_TARGETS
        lines.append(f"  {paint(f'{status!s:5}', status, colour)}  {check:{width}}  "
                     f"{shown}{f' and {more} more' if more > 0 else ''}")
    return lines


@contextmanager
def first_interrupt_stops(stop: threading.Event) -> Iterator[None]:
    """Inside: the first Ctrl-C sets `stop` (the sweep stops at once: probes still running
    are abandoned, what finished is stored and printed); a second one raises
    KeyboardInterrupt as usual."""

    def handler(_signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
