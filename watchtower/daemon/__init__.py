"""`watchtower run`: every long-running part built and wired in one place.

The parts are the store, the HTTP listener (/metrics, heartbeat pings, the probe actor), the
alert processor, the notification outbox, the report scheduler, the remediator and the sweep
scheduler. The daemon starts them in an order that fails early and cheaply: the listener's port
is bound first, so a busy port is one line naming it before the store is touched or a sweep
starts. A reload (SIGHUP) re-reads the fleet file and hands the new, validated fleet to every
part that can take it; a bad file changes nothing. Stop is the reverse of start.

`cli/` parses arguments and calls `Daemon(...).run()`; nothing here parses arguments.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from watchtower import __version__
from watchtower.config import Fleet, database_url
from watchtower.errors import ConfigError

log = logging.getLogger("watchtower")


class Reconfigurable(Protocol):
    """A long-running part that takes a new, already validated fleet without a restart."""

    def reconfigure(self, fleet: Fleet) -> None: ...


#: `all`: the one process probes on its own schedule (APScheduler; the default). `scheduler`:
#: probes are deferred to the agents of each vantage and judged by quorum (watchtower/scaleout).
ROLES = ("all", "scheduler")


class DaemonError(RuntimeError):
    """`watchtower run` cannot start; the message is the one line a person needs."""


def wait_for_signal(on_reload: Callable[[], None] | None = None) -> None:
    """Block until SIGTERM or SIGINT; SIGHUP calls `on_reload` (when given) and goes on.

    The handlers only note the signal; this loop acts on it. A handler runs in the main thread
    between two bytecodes, possibly while that thread holds a lock: setting a threading.Event
    there deadlocks when the signal lands inside the Event's own wait (seen with a second
    SIGTERM), and a reload in a handler would run a whole reconfiguration at such a moment."""
    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        received.append(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    if on_reload is not None:
        signal.signal(signal.SIGHUP, handler)
    while True:
        time.sleep(0.2)  # the handler runs during the sleep; the loop sees it within 0.2 s
        while received:
            signum = received.pop(0)
            if signum == signal.SIGHUP and on_reload is not None:
                on_reload()
                continue
            log.info("received %s; stopping", signal.Signals(signum).name)
            return


class Daemon:
    """The parts of `watchtower run`, started by `start()`, reloaded by `reload()`, stopped by
    `stop()`; `run()` does all three around the signals."""

    def __init__(self, fleet: Fleet, *, config_path: str | None = None,
                 load: Callable[[str], Fleet] | None = None, role: str = "all") -> None:
        if role not in ROLES:
            raise DaemonError(f"role {role!r} is not one of {', '.join(ROLES)}")
        self.fleet = fleet
        self.role = role
        self.config_path = config_path
        self._load = load
        self._parts: list[Reconfigurable] = []
        self._stops: list[Callable[[], None]] = []
        self.http: Any = None

    # -- start ------------------------------------------------------------------------------

    def start(self) -> str:
        """Start every part; returns the listener's URL. Raises DaemonError for a port in use,
        with nothing else started."""
        from watchtower.daemon.http import serve_http
        from watchtower.probe.runtime import RuntimeStats
        from watchtower.store import Store

        runtime = RuntimeStats()
        try:
            self.http = serve_http(self.fleet, runtime)
        except OSError as exc:
            raise DaemonError(f"[metrics] listen = {self.fleet.metrics.listen}: cannot listen "
                              f"there ({exc.strerror or exc}); `watchtower run` serves /metrics "
                              "and heartbeat pings on it: free the port or choose another"
                              ) from None
        self._stops.append(self.http.shutdown)
        store = Store(database_url(self.fleet.store))
        self._stops.append(store.close)
        self.http.attach(store)
        interrupted = store.mark_interrupted()
        if interrupted:
            log.warning("%d sweep(s) were interrupted by the last stop; their stored results "
                        "stay", interrupted)
        self._start_workers(store, runtime)
        listen = f"{self.http.httpd.server_address[0]}:{self.http.port}"
        return f"http://{listen}/metrics"

    def _start_workers(self, store: Any, runtime: Any) -> None:
        from watchtower.alerting.notify import OutboxWorker
        from watchtower.alerting.processor import AlertProcessor
        from watchtower.probe import workers
        from watchtower.probe.scheduler import Scheduler
        from watchtower.probe.sweep import select_checks
        from watchtower.remediation.engine import Remediator
        from watchtower.remediation.live_context import default_context
        from watchtower.remediation.watcher import ApprovalWatcher
        from watchtower.report import ReportScheduler

        fleet = self.fleet
        alerts = AlertProcessor(store, fleet)
        outbox = OutboxWorker(store, fleet)
        outbox.start()
        self._stops.insert(0, outbox.stop)
        reports = ReportScheduler(store, fleet)
        reports.start()
        self._stops.insert(0, reports.shutdown)
        remediator = Remediator(fleet, store, default_context(fleet, store))
        recovered = remediator.recover()
        if recovered:
            log.warning("resolved %d remediation(s) interrupted by the last stop",
                        len(recovered))
        approvals = ApprovalWatcher(remediator)
        approvals.start()
        self._stops.insert(0, approvals.stop)

        def after_sweep(_key: str, _outcome: object) -> None:
            outbox.wake()
            remediator.run_auto()

        if self.role == "scheduler":
            from watchtower.scaleout.roles import SchedulerRole

            fanout = SchedulerRole(fleet, store, select_checks(), on_stored=alerts.process,
                                   on_sweep=after_sweep)
            fanout.start()
            self._stops.insert(0, fanout.shutdown)
            # the agents probe; this process keeps the daily retention (APScheduler, no groups)
            scheduler = Scheduler(fleet, store, {}, runtime=runtime)
            self._parts = [fanout]
        else:
            scheduler = Scheduler(fleet, store, select_checks(), on_sweep=after_sweep,
                                  on_stored=alerts.process, runtime=runtime)
            self._parts = []
            if fleet.probe.sweep_processes != 1:
                workers.prestart()  # large sweeps fork their workers from it
        scheduler.start()
        self._stops.insert(0, scheduler.shutdown)
        # remediation policies are read at apply time: a narrower one holds at once
        self._parts += [scheduler, remediator, alerts, outbox, reports, self.http]

    # -- reload and stop ----------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the fleet file; a valid one replaces schedules, thresholds, channels,
        windows, policies, heartbeat tokens and metrics credentials (state is in the store); a
        bad one is logged and the running fleet stays."""
        if self.config_path is None or self._load is None:
            log.warning("SIGHUP ignored: no config file to re-read")
            return
        try:
            new = self._load(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload rejected, the running config stays: %s", problem)
            return
        if new.metrics.listen != self.fleet.metrics.listen:
            log.warning("[metrics] listen changes need a restart; still serving the old")
        try:
            for part in self._parts:
                part.reconfigure(new)
        except ConfigError as exc:  # a secret that cannot be read now
            log.error("reload stopped half-way: %s", "; ".join(exc.problems))
            return
        self.fleet = new
        log.info("reloaded %s", self.config_path)

    def stop(self) -> None:
        """Stop starting sweeps and wait for running ones, then the workers, the listener,
        the store: the reverse of start."""
        for stop in self._stops:
            try:
                stop()
            except Exception as exc:  # one part failing to stop must not keep the others up
                log.error("stopping %s: %s", getattr(stop, "__qualname__", stop), exc)
        self._stops.clear()

    def run(self, banner: Callable[[str], None] | None = None) -> None:
        """Start, announce, serve until SIGTERM/SIGINT (SIGHUP reloads), stop."""
        url = self.start()
        try:
            (banner or log.info)(f"watchtower {__version__} running; metrics at {url}")
            wait_for_signal(self.reload)
        finally:
            self.stop()
