"""The tables as SQLAlchemy Core `Table`s, for the set-based statements of the write path
(watchtower/store/results.py), retention and heartbeat upserts: one name per table, defined once.
"""

from __future__ import annotations

from typing import Any

from watchtower.store.tables.alerting import GaugeRow
from watchtower.store.tables.heartbeats import HeartbeatRow
from watchtower.store.tables.history import (
    EvidenceRow,
    FlipRow,
    ResultRow,
    RollupRow,
    StateRow,
    SweepRow,
)


def _table(model: Any) -> Any:
    return model.__table__


RES = _table(ResultRow)
DAY = _table(RollupRow)
STATE = _table(StateRow)
FLIP = _table(FlipRow)
EV = _table(EvidenceRow)
SWEEP = _table(SweepRow)
GAUGE = _table(GaugeRow)
HEARTBEAT = _table(HeartbeatRow)
