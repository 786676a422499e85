"""Applies plans a person approved soon after the approval, not at the next sweep.

The dashboard and `watchtower remediate approve` only move a plan to `approved` (they never touch
a host or an API); `watchtower run` applies it. After every sweep it does (`run_auto`), but a
sweep of a family may be an hour away, and an operator who approved a fix wants to see it
applied and verified while they look. So `watchtower run` also looks for approved plans every
few seconds (`Remediator.apply_approved`: the policy in force, the signature, the limits and
the host lock decide, exactly as for any apply). Two processes or threads applying at once is
safe: a plan moves `approved -> applying` by compare-and-set, so it runs once.
"""

from __future__ import annotations

import logging
import threading

from watchtower.remediation.engine import Remediator

log = logging.getLogger(__name__)

#: How often approved plans are looked for, in seconds: one query of the proposals table.
POLL_SECONDS = 5.0


class ApprovalWatcher:
    """A daemon thread calling `remediator.apply_approved()` every `interval` seconds."""

    def __init__(self, remediator: Remediator, interval: float = POLL_SECONDS) -> None:
        self.remediator = remediator
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="remediation-approvals")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.remediator.apply_approved()
            except Exception:  # a bad moment (database locked, a step's crash) never ends it
                log.exception("applying approved remediations failed; trying again")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
