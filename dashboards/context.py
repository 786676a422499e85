"""What every page needs: the fleet, the store, the remediator and the reports source.

The fleet file comes from the command line Streamlit passes through (`streamlit run app.py --
-c FLEET`, as `watchtower dashboard` does) or from `WATCHTOWER_FLEET` (tests, containers). One
context is shared by all sessions of the process (`st.cache_resource`) and rebuilt when the fleet
file changes, so a new users file path or policy takes effect without a restart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import streamlit as st

from watchtower.compliance.score import Placement, placement
from watchtower.config import Fleet, database_url
from watchtower.probe import registry
from watchtower.probe.runner import planned_families
from watchtower.remediation.engine import Remediator
from watchtower.store import Store

from .actions import read_only_remediator
from .reports import ReportSource, report_source

ENV_FLEET = "WATCHTOWER_FLEET"


def fleet_path_from(argv: Sequence[str], env: dict[str, str] | None = None) -> str | None:
    """`-c PATH` / `--config PATH` / `--config=PATH` in argv, else $WATCHTOWER_FLEET."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    environ = os.environ if env is None else env
    return environ.get(ENV_FLEET) or None


@dataclass
class AppContext:
    fleet_path: str
    fleet: Fleet
    store: Store
    remediator: Remediator
    reports: ReportSource

    @cached_property
    def where(self) -> Placement:
        """Where each target of the fleet belongs (section, host row): computed once per
        fleet file, as the reports compute it."""
        return placement(self.fleet.targets())

    @cached_property
    def planned(self) -> set[tuple[str, str, str]]:
        """(target, kind, family) a sweep plans: what a score shows as `not run` without a
        result."""
        return planned_families(self.fleet, registry.checks())


def build_context(path: str) -> AppContext:
    fleet = registry.load_fleet_file(path)
    store = Store(database_url(fleet.store))
    store.dashboard.ensure_tables()
    return AppContext(path, fleet, store, read_only_remediator(fleet, store),
                      report_source(fleet, store))


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_context(path: str, _mtime: float) -> AppContext:
    return build_context(path)


def app_context() -> AppContext:
    """The shared context; shows the problem and stops the page when there is none."""
    # Streamlit sets argv[0] to the app file and argv[1:] to what follows `--`; elsewhere (an
    # AppTest inside pytest) argv belongs to someone else and only the environment counts.
    own_argv = bool(sys.argv) and Path(sys.argv[0]).name == "app.py"
    path = fleet_path_from(sys.argv[1:] if own_argv else [])
    if not path:
        st.error("No fleet file: start the dashboard with `watchtower dashboard -c FLEET`.")
        st.stop()
    assert path is not None
    try:
        mtime = Path(path).stat().st_mtime
        return _cached_context(path, mtime)
    except Exception as exc:  # a bad config is shown, never a traceback with its contents
        from watchtower.errors import ConfigError

        problems = (exc.problems if isinstance(exc, ConfigError)
                    else [f"{type(exc).__name__}: {exc}"])
        st.error("The fleet file could not be loaded:\n\n" +
                 "\n".join(f"- {p}" for p in problems))
        st.stop()
        raise
