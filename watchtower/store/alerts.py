"""Alert state, alert flips, the notification outbox and channel health (`Store.alerts`).

The alerting rules live in watchtower/alerting/ (thresholds, maintenance windows, channels); this
module holds what they persist and the transactions they need:
- `update_states`: one transaction that reads the alert states of a batch, lets the processor
  change them, and writes them with the alert flips and outbox rows they caused, so a notice is
  never written without the state that caused it (nor the other way round);
- the outbox worker's compare-and-set lease (`claim`), so two workers never send one row, and
  `save_delivery`, which writes the row's outcome with its channel's health.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from watchtower.store.db import Database, chunks
from watchtower.store.tables import AlertFlipRow, AlertStateRow, ChannelHealthRow, OutboxRow

Pair = tuple[str, str]
#: Changes the alert states of a batch in place (adding new ones to the dict) and returns the
#: rows to insert with them (alert flips, outbox notices), in order.
StateChange = Callable[[dict[Pair, AlertStateRow]], Sequence[AlertFlipRow | OutboxRow]]


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def update_states(self, keys: set[Pair], change: StateChange) -> None:
        """Read the states of `keys`, apply `change`, write states and new rows: one
        transaction, retried as a whole on a busy database or a state another sweep inserted
        meanwhile (so `change` may run again)."""

        def step() -> None:
            with Session(self.db.engine) as s:
                states = {(a.check_id, a.target): a for a in _states_of(s, keys)}
                rows = change(states)
                for st in states.values():
                    s.add(st)
                for row in rows:
                    s.add(row)
                s.commit()

        try:
            self.db.retry(step)
        except IntegrityError:
            # Two sweeps processed a new pair at once (a prerequisite runs in the sweep of
            # each group that needs it): the other one inserted its state first. Once more,
            # reading the row it committed.
            self.db.retry(step)

    def states(self) -> list[AlertStateRow]:
        """Every alert state row (dashboard, tests)."""
        with Session(self.db.engine) as s:
            return list(s.exec(select(AlertStateRow)).all())

    def flips(self) -> list[AlertFlipRow]:
        with Session(self.db.engine) as s:
            return list(s.exec(select(AlertFlipRow).order_by(col(AlertFlipRow.id))).all())

    # -- outbox -----------------------------------------------------------------------------

    def outbox(self, state: str | None = None) -> list[OutboxRow]:
        """Outbox rows (oldest first), optionally of one state; for the dashboard and tests."""
        with Session(self.db.engine) as s:
            q = select(OutboxRow).order_by(col(OutboxRow.id))
            if state is not None:
                q = q.where(OutboxRow.state == state)
            return list(s.exec(q).all())

    def due(self, now: dt.datetime, limit: int) -> list[int]:
        """Ids of pending rows whose next attempt has come, oldest first."""
        with Session(self.db.engine) as s:
            q = (select(OutboxRow.id)
                 .where(OutboxRow.state == "pending", col(OutboxRow.next_attempt_at) <= now)
                 .order_by(col(OutboxRow.id)).limit(limit))
            return [i for i in s.exec(q).all() if i is not None]

    def claim(self, row_id: int, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Compare-and-set lease: only the worker whose UPDATE changed the row sends it."""
        stmt = (update(OutboxRow)
                .where(and_(col(OutboxRow.id) == row_id, col(OutboxRow.state) == "pending",
                            or_(col(OutboxRow.claimed_until).is_(None),
                                col(OutboxRow.claimed_until) < now)))
                .values(claimed_until=now + lease))
        with self.db.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def outbox_row(self, row_id: int) -> OutboxRow | None:
        with Session(self.db.engine) as s:
            return s.get(OutboxRow, row_id)

    def channel(self, name: str) -> ChannelHealthRow | None:
        with Session(self.db.engine) as s:
            return s.get(ChannelHealthRow, name)

    def save_delivery(self, row: OutboxRow, health: ChannelHealthRow) -> None:
        """A delivery attempt's outcome: the outbox row and its channel's health, together."""
        with Session(self.db.engine) as s:
            s.merge(row)
            s.merge(health)
            s.commit()

    def channel_health(self) -> list[ChannelHealthRow]:
        with Session(self.db.engine) as s:
            return list(s.exec(select(ChannelHealthRow)).all())


def _states_of(s: Session, keys: set[Pair]) -> list[AlertStateRow]:
    checks = sorted({k[0] for k in keys})
    out: list[AlertStateRow] = []
    for part in chunks(sorted({k[1] for k in keys})):
        rows = s.exec(select(AlertStateRow).where(col(AlertStateRow.check_id).in_(checks),
                                                  col(AlertStateRow.target).in_(part))).all()
        out.extend(r for r in rows if (r.check_id, r.target) in keys)
    return out
