"""The two roles: the scheduler (a part of `watchtower run --role scheduler`, in place of the
APScheduler one) and the agent (`watchtower agent --vantage NAME`).

Any number of each may run. Schedulers share the tick (procrastinate defers it once and runs
it on one of them; the deferral row of each (group, tick) makes a second deferral a no-op);
agents of one vantage share its queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

import procrastinate

from watchtower.config import Fleet
from watchtower.errors import ConfigError
from watchtower.model import Result
from watchtower.probe.api import Check
from watchtower.scaleout import engine
from watchtower.scaleout.agent import Agent
from watchtower.scaleout.fanout import Fanout
from watchtower.scaleout.ticks import SCHEDULER_QUEUE, queue_of
from watchtower.store import Flip, Store
from watchtower.store.vantages import conninfo

log = logging.getLogger(__name__)


def need_postgres(store: Store) -> None:
    """A SQLite store cannot be shared by machines: say so before anything starts."""
    try:
        conninfo(store.url)
    except ValueError as exc:
        raise ConfigError([f"[store] database: {exc}"]) from None


def _app_factory(store: Store, handler: engine.Handler,
                 tick: int | None) -> Callable[[], procrastinate.App]:
    def make() -> procrastinate.App:
        app = engine.make_app(store.url, handler, tick)
        engine.ensure_schema(app, store.vantages.engine_schema_present)
        return app

    return make


class SchedulerRole:
    """The scale-out scheduler as a daemon part: start, reconfigure, shutdown."""

    def __init__(self, fleet: Fleet, store: Store, checks: dict[str, Check], *,
                 on_stored: Callable[[list[Result]], object] | None = None,
                 on_flip: Callable[[Flip], None] | None = None,
                 on_sweep: Callable[[str, object], None] | None = None) -> None:
        need_postgres(store)
        self.fanout = Fanout(fleet, store, checks, on_stored, on_flip, on_sweep)
        self.fleet = fleet
        self.store = store
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, run_now: bool = True) -> None:
        make = _app_factory(self.store, self.fanout, self.fleet.scaleout.tick)
        name = f"scheduler@{socket.gethostname()}:{os.getpid()}"
        self._thread = threading.Thread(
            target=engine.serve, name="scaleout-scheduler", daemon=True, args=(make,),
            kwargs={"queues": [SCHEDULER_QUEUE], "name": name, "concurrency": 1,
                    "lease": self.fleet.scaleout.lease, "stop": self.stop_event})
        self._thread.start()
        log.info("scheduler role: %d groups deferred to vantages %s every %ds tick",
                 len(self.fanout.groups()), ", ".join(self.fleet.scaleout.vantages),
                 self.fleet.scaleout.tick)

    def reconfigure(self, fleet: Fleet) -> None:
        if fleet.scaleout.tick != self.fleet.scaleout.tick:
            log.warning("[scaleout] tick changes need a restart; still ticking every %ds",
                        self.fleet.scaleout.tick)
        self.fleet = self.fanout.fleet = fleet

    def jobs(self) -> list[tuple[str, str]]:
        return [(g.key, "per tick") for g in self.fanout.groups()]

    def shutdown(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=self.fleet.scaleout.lease + 5)


def run_agent(fleet: Fleet, store: Store, checks: dict[str, Check], vantage: str,
              stop: threading.Event, name: str | None = None) -> Agent:
    """Claim and run jobs from `vantage`'s queue until `stop`; returns the agent (counts)."""
    if vantage not in fleet.scaleout.vantages:
        raise ConfigError([f"--vantage {vantage}: not one of [scaleout] vantages "
                           f"({', '.join(fleet.scaleout.vantages)})"])
    need_postgres(store)
    agent = Agent(fleet, store, checks, vantage,
                  name or f"{vantage}@{socket.gethostname()}:{os.getpid()}")
    beat = threading.Thread(target=agent.beat_forever, args=(stop,), daemon=True,
                            name="agent-heartbeat")
    beat.start()
    log.info("agent %s claims jobs from %s", agent.name, queue_of(vantage))
    try:
        engine.serve(_app_factory(store, agent, None), queues=[queue_of(vantage)],
                     name=agent.name, concurrency=fleet.scaleout.agent_concurrency,
                     lease=fleet.scaleout.lease, stop=stop)
    finally:
        agent.stop()
        beat.join(timeout=2)
        try:
            store.vantages.agent_gone(agent.name)
        except Exception as exc:  # the database away at stop: the lease says it instead
            log.warning("agent %s: not unregistered (%s)", agent.name, exc)
    return agent
