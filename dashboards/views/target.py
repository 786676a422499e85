"""Target: every check with verdict, summary, evidence, standards, history and flips."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from watchtower.probe import registry
from watchtower.store import StateRow

from .. import charts
from ..actions import NotAllowed, acknowledge
from ..auth import Action, User
from ..context import AppContext
from ..data import (
    ICON,
    badge,
    current_acks,
    evidence_bodies,
    target_flips,
    target_history,
    target_list,
    target_states,
)
from ..evidence import vantage_rows
from ..hints import fix_line
from .common import CHANGE_PX, TARGET_KEY, VANTAGE_PX, ago, check_meta, fit_columns, plain


def render(app: AppContext, user: User) -> None:
    st.title("Target")
    targets = target_list(app.store)
    if not targets:
        st.info("No results yet.")
        return
    keys = [(t, k) for t, k, _ in targets]
    worst = {(t, k): s for t, k, s in targets}
    wanted = st.session_state.get(TARGET_KEY)
    index = keys.index(tuple(wanted)) if wanted and tuple(wanted) in keys else 0
    choice = st.selectbox("Target", keys, index=index, key="target_select",
                          format_func=lambda k: f"{ICON.get(worst[k], '⚪')} {k[0]} ({k[1]})")
    assert choice is not None
    name, kind = choice
    st.session_state[TARGET_KEY] = choice
    states = target_states(app.store, name, kind)
    counts = {s: sum(1 for r in states if r.status == s) for s in ("fail", "error", "warn", "ok")}
    cols = st.columns(5)
    cols[0].metric("Checks", len(states))
    for col, (status, n) in zip(cols[1:], counts.items(), strict=True):
        col.metric(f"{ICON[status]} {status}", n)

    tab_checks, tab_time, tab_latency, tab_flips = st.tabs(
        ["Checks", "Timeline", "Latency", "Flips"])
    with tab_checks:
        _checks(app, user, name, states)
    history = target_history(app.store, name, dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
                             kind)
    with tab_time:
        st.caption("Each bar is one unchanged verdict (last 30 days); hover for the summary.")
        if history:
            st.altair_chart(charts.status_timeline(history), width="stretch")
        else:
            st.caption("No history yet.")
    with tab_latency:
        st.caption("Mean probe duration per streak of results.")
        if history:
            st.altair_chart(charts.latency_chart(history), width="stretch")
    with tab_flips:
        flips = target_flips(app.store, name)
        if flips:
            st.dataframe(flips, hide_index=True, column_order=["at", "check", "change",
                                                               "reason"],
                         column_config=fit_columns(flips, CHANGE_PX, {"reason": 1}))
        else:
            st.caption("No status changes recorded.")


def _checks(app: AppContext, user: User, target: str, states: list[StateRow]) -> None:
    meta = check_meta()
    fixes = registry.fixes(app.fleet)
    bodies = evidence_bodies(app.store, (s.evidence_id for s in states))
    acks = current_acks(app.store, [(s.check_id, target) for s in states])
    for st_row in states:
        m = meta.get(st_row.check_id)
        title = m.title if m else st_row.check_id
        ack = acks.get((st_row.check_id, target))
        mark = " · ✅ acknowledged" if ack else ""
        header = (f"{ICON.get(st_row.status, '⚪')} **{st_row.check_id}** — "
                  f"{plain(st_row.summary)}{mark}")
        with st.expander(header, expanded=False):
            st.markdown(f"**{title}**  \n{badge(st_row.status)} since "
                        f"{ago(_aware(st_row.since))} · last probed {ago(_aware(st_row.last_at))}"
                        f" · {st_row.streak} result(s) in a row · {st_row.duration_ms:.0f} ms")
            if m and m.standards:
                st.markdown("**Standards:** " + "; ".join(m.standards))
            if st_row.check_id in fixes and st_row.status in ("fail", "error"):
                st.markdown("**Remediation:** "
                            + ", ".join(f"`{r}`" for r in fixes[st_row.check_id]))
            if ack:
                st.info(f"Acknowledged by {ack.by} {ago(_aware(ack.at))}"
                        + (f": {plain(ack.note)}" if ack.note else ""))
            elif st_row.status in ("fail", "error", "warn"):
                _ack_form(app, user, st_row.check_id, target)
            body = bodies.get(st_row.evidence_id or -1, {})
            _vantages(body)
            st.markdown("**Evidence**")
            st.json(body, expanded=1)
        line = fix_line(st_row.check_id, st_row.status)
        if line:  # beside the check, not inside it: the first thing to read about a failure
            st.caption(f"🛠️ {plain(line)}")


def _vantages(evidence: dict[str, Any]) -> None:
    """A quorum verdict (scale-out): what each vantage saw, before the raw evidence."""
    rows = vantage_rows(evidence)
    if not rows:
        return
    st.markdown(f"**Seen from each vantage** (fails at {plain(evidence.get('quorum', '?'))})")
    st.dataframe(rows, hide_index=True, column_order=["vantage", "status", "summary"],
                 column_config=fit_columns(rows, VANTAGE_PX, {"summary": 1}))


def _ack_form(app: AppContext, user: User, check_id: str, target: str) -> None:
    allowed = user.can(Action.ACKNOWLEDGE)
    with st.form(f"ack-{check_id}-{target}", border=False):
        note = st.text_input("Note", key=f"ack-note-{check_id}-{target}", disabled=not allowed,
                             placeholder="seen; working on it")
        pressed = st.form_submit_button("Acknowledge", disabled=not allowed,
                                        help=None if allowed else "operators only")
    if not allowed:
        st.caption("Viewers cannot acknowledge.")
    if pressed:
        try:
            acknowledge(app.store, user, check_id, target, note)
        except (NotAllowed, LookupError) as exc:
            st.error(plain(exc))
            return
        st.rerun()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
