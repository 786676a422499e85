"""The lab's nightly job: pings its heartbeat on `watchtower run` (POST /ping/<token>, as a
cron job or backup tool would with curl) every `interval` seconds while the lab runs.

Fault `cron:missed` stops the pings (the job stopped running): after the heartbeat's period plus
grace, heartbeat.ping fails with the last ping's time. The pinger is a LabApp only to share the
lab's fault switching; it serves no host.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from typing import ClassVar

from watchtower.lab.apps.common import Fault, LabApp, Request, Response, not_found

log = logging.getLogger(__name__)
HEARTBEAT_NAME = "lab-nightly"
TOKEN_FILE = "heartbeat-token"  # noqa: S105 - a file name, not a secret
PERIOD, GRACE, INTERVAL = 60.0, 30.0, 20.0


class HeartbeatPinger(LabApp):
    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("missed", "the lab's nightly job stops pinging its heartbeat"),
    )

    def __init__(self, **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        return not_found()

    def ping_once(self, url: str) -> bool:
        if "missed" in frozenset(self.faults):
            return False
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"),  # noqa: S310
                                        timeout=5) as resp:
                ok = resp.status == 200
        except OSError as exc:  # watchtower run is not up (yet): the next ping tries again
            log.debug("heartbeat ping failed: %s", exc)
            return False
        self.sent += bool(ok)
        return bool(ok)

    def start_pinging(self, url: str, interval: float = INTERVAL) -> None:
        def loop() -> None:
            while not self._halt.is_set():
                self.ping_once(url)
                self._halt.wait(interval)

        self._thread = threading.Thread(target=loop, name="lab-heartbeat", daemon=True)
        self._thread.start()

    def stop_pinging(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=6)
