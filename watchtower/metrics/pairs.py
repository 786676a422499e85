"""The per-(check, target) families of /metrics, written by hand from one raw read: ~45,000
pairs at 1,000 domains render in a fraction of what prometheus-client takes (bench_metrics)."""

from __future__ import annotations

import logging

from watchtower.model import GAUGE_NAME
from watchtower.store import Store

log = logging.getLogger(__name__)


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value

class PairRenderer:
    """Renders the per-(check, target) families from two raw reads (state, check_gauge)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._labels: dict[tuple[str, str, str], tuple[str, str]] = {}

    def _label(self, check: str, family: str, target: str) -> tuple[str, str]:
        """('check="..",family=".."', 'target=".."'): labels in sorted order, as
        prometheus-client writes them, so `status` fits between the two halves."""
        key = (check, family, target)
        parts = self._labels.get(key)
        if parts is None:
            parts = (f'check="{_escape(check)}",family="{_escape(family)}"',
                     f'target="{_escape(target)}"')
            self._labels[key] = parts
        return parts

    def render(self) -> str:
        state, gauges = self.store.metrics.pairs()
        if len(self._labels) > 2 * len(state) + 1000:
            self._labels.clear()
        status_lines: list[str] = []
        last_lines: list[str] = []
        duration_lines: list[str] = []
        drift_lines: list[str] = []
        add_status, add_last, add_duration = (status_lines.append, last_lines.append,
                                              duration_lines.append)
        label = self._label
        for check, family, target, status, last_at, seconds in state:
            head, tail = label(check, family, target)
            add_status(f'watchtower_check_status{{{head},status="{status}",{tail}}} 1.0\n')
            add_last(f"watchtower_check_last_run_timestamp_seconds{{{head},{tail}}} "
                     f"{float(last_at)!r}\n")
            add_duration(f"watchtower_check_duration_seconds{{{head},{tail}}} "
                         f"{float(seconds)!r}\n")
            if family == "drift":
                drift_lines.append(f"watchtower_drift_detected{{{head},{tail}}} "
                                   f"{'1.0' if status in ('fail', 'warn') else '0.0'}\n")
        parts = [
            "# HELP watchtower_check_status Current verdict per check and target: one series "
            "labelled with the current status, value 1\n# TYPE watchtower_check_status gauge\n",
            *status_lines,
            "# HELP watchtower_check_last_run_timestamp_seconds When the check last ran on the "
            "target\n# TYPE watchtower_check_last_run_timestamp_seconds gauge\n",
            *last_lines,
            "# HELP watchtower_check_duration_seconds How long the last probe took\n"
            "# TYPE watchtower_check_duration_seconds gauge\n",
            *duration_lines,
            "# HELP watchtower_drift_detected 1 when a drift check finds the running state "
            "differs from the declared one\n# TYPE watchtower_drift_detected gauge\n",
            *drift_lines,
        ]
        current = None
        for name, check, family, target, value in gauges:
            if not GAUGE_NAME.match(name):
                continue
            if name != current:
                current = name
                parts.append(f"# HELP watchtower_{name} Gauge reported by checks in their "
                             f"evidence (docs/metrics.md)\n# TYPE watchtower_{name} gauge\n")
            head, tail = label(check, family, target)
            parts.append(f"watchtower_{name}{{{head},{tail}}} {float(value)!r}\n")
        return "".join(parts)
