"""Deadlines shared by every network call of one probe.

A probe has one time budget; each socket operation gets at most what is left of it, so a slow
server cannot stretch a probe past its timeout by answering just in time, step after step.
"""

from __future__ import annotations

import time

from watchtower.errors import ProbeTimeout


def remaining(deadline: float | None, cap: float) -> float:
    """Seconds left before `deadline` (monotonic), never more than `cap`; raises when spent."""
    if deadline is None:
        return cap
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProbeTimeout("probe deadline reached")
    return min(cap, left)
