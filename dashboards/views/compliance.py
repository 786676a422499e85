"""Compliance: per-domain score by family (internet.nl-style), its trend, expiry horizons."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from watchtower.compliance import explanations, frameworks
from watchtower.compliance.explanations import ExplanationError
from watchtower.compliance.score import (
    GROUP_TITLES,
    WEIGHT,
    SectionScore,
    replay,
    score_table,
    trend_streaks,
)
from watchtower.model import utcnow
from watchtower.probe import registry

from .. import charts, layout
from ..actions import NotAllowed, explain, revoke_explanation
from ..auth import Action, User
from ..context import AppContext
from ..data import compliance_scores, recent_sweeps, trend_rows
from ..evidence import expiry_horizon
from .common import fit_columns, plain, row_detail, selected_row, text_columns

# The score table's text and count columns (px); the score and the groups share what they
# leave (layout.column_px), so every group is on a 1366 px screen.
SCORE_PX = {"domain": 170, "results": 64}
UNSCORED_PX = 200
EXPLANATION_PX = {"#": 48, "domain": 170, "criterion": 200, "until": 100, "by": 100,
                  "state": 80}
UNSCORED_HELP = ("groups without a score: not run (no result) or not judged (only errors); "
                 "and results of a scored group that are not judged")


def render(app: AppContext, user: User) -> None:
    st.title("Compliance")
    st.caption(f"Score per domain and host: ok {WEIGHT['ok']:.0%}, warn {WEIGHT['warn']:.0%}, "
               "fail 0 %; error (the probe could not run) is not judged. Lowest first. The "
               "same score as the compliance reports; a blank group is named in `unscored` "
               "(not run, or not judged).")
    where = app.where
    scores = compliance_scores(app.store, where, app.planned, utcnow().date())
    if not scores:
        st.info("No results yet.")
        return
    _score_table(scores)
    _adhoc_note(app)

    st.subheader("Trend")
    domains = [s.name for s in scores if s.kind == "domain"]
    c1, c2, c3 = st.columns([3, 1, 1])
    domain = c1.selectbox("Domain", domains, key="cmp_domain")
    days = c2.select_slider("Days", [7, 14, 30, 90], value=30, key="cmp_days")
    adhoc = c3.checkbox("Include ad-hoc runs", key="cmp_adhoc",
                        help="`watchtower check` runs and remediation verifications; left out "
                             "by default, as in the reports")
    if domain:
        now = dt.datetime.now(dt.UTC)
        start = now - dt.timedelta(days=int(days))
        streaks = trend_streaks(trend_rows(app.store, domain, start, adhoc), domain, where)
        points = replay(streaks, start, now)
        if points:
            st.altair_chart(charts.score_trend_chart(points), width="stretch")
    sweeps = recent_sweeps(app.store, include_adhoc=adhoc)
    if sweeps:
        st.caption("Share of fail + error in each sweep, by schedule (the whole fleet)")
        st.altair_chart(charts.sweep_trend_chart(sweeps), width="stretch")

    _explanations(app, user, domains)

    st.subheader("Expiry horizon")
    horizon = expiry_horizon(app.store)
    if horizon:
        st.caption("Certificates and DNSSEC signatures expiring soonest; the dashed line is 14 "
                   "days.")
        st.altair_chart(charts.expiry_chart(horizon), width="stretch")
    else:
        st.caption("No certificate or signature dates in the latest results.")


def _score_table(scores: list[SectionScore]) -> None:
    """One row per domain and host: the score, what it leaves out, each group's score."""
    groups, rows = score_table(scores)
    px = {**SCORE_PX, "unscored": UNSCORED_PX}
    group_px = layout.column_px(len(groups) + 1, sum(px.values()) + layout.SELECT_PX)
    config: dict[str, Any] = {
        g: st.column_config.ProgressColumn(GROUP_TITLES.get(g, g), min_value=0, max_value=100,
                                           format="%d %%", width=group_px)
        for g in ["score", *groups]}
    config |= text_columns(px, unscored=UNSCORED_HELP)
    config["results"] = st.column_config.NumberColumn("results", width=px["results"])
    # `unscored` beside the score: what a blank group means must be seen, not scrolled to
    event = st.dataframe(rows, hide_index=True, column_config=config, width="stretch",
                         column_order=["domain", "score", "unscored", *groups, "results"],
                         height=min(38 + 35 * len(rows), 480), key="cmp_scores",
                         on_select="rerun", selection_mode="single-row")
    row = selected_row(event, rows)
    if row is not None and row["unscored"]:
        row_detail({"unscored": f"{row['domain']}: {row['unscored']}"}, ["unscored"])
    elif any(r["unscored"] for r in rows):
        st.caption("Select a row to read its `unscored` in full.")


def _adhoc_note(app: AppContext) -> None:
    """Say when the current verdicts include ad-hoc runs: reports leave them out by default."""
    n = app.store.dashboard.adhoc_states()
    if n:
        st.caption(f"{n} current verdict{'s come' if n != 1 else ' comes'} from ad-hoc runs "
                   "(`watchtower check`, verifications): shown here as the latest result; "
                   "reports count scheduled sweeps only unless `--include-adhoc`.")


def _explanations(app: AppContext, user: User, domains: list[str]) -> None:
    """Comply or explain: the explanations in force, and (operators) record or revoke one."""
    st.subheader("Comply or explain")
    rows = app.store.explanations.rows()
    today = utcnow().date()
    if rows:
        table = [{"#": r.id, "domain": r.domain, "criterion": r.criterion,
                  "until": r.until.isoformat(), "by": r.who, "why": r.why,
                  "state": "valid" if explanations.of_row(r).valid_on(today) else "expired"}
                 for r in rows]
        st.dataframe(table, hide_index=True,
                     column_config=fit_columns(table, EXPLANATION_PX, {"why": 1}))
    else:
        st.caption("No explanations recorded.")
    allowed = user.can(Action.EXPLAIN)
    with st.form("explain", border=False):
        c1, c2, c3 = st.columns([2, 2, 1])
        domain = c1.selectbox("Domain", domains, key="exp_domain", disabled=not allowed)
        criterion = c2.selectbox("Criterion (internet.nl test or check id)", _criteria(),
                                 key="exp_criterion", disabled=not allowed)
        until = c3.date_input("Until", value=today + dt.timedelta(days=90), key="exp_until",
                              disabled=not allowed)
        why = st.text_input("Why the criterion is not met", key="exp_why",
                            disabled=not allowed)
        pressed = st.form_submit_button("Record explanation", disabled=not allowed,
                                        help=None if allowed else "operators only")
    if not allowed:
        st.caption("Viewers cannot record explanations.")
    if pressed and isinstance(until, dt.date):
        try:
            explain(app.store, user, str(domain), str(criterion), why, until)
        except (NotAllowed, ExplanationError) as exc:
            st.error(plain(exc))
            return
        st.rerun()
    if allowed and rows:
        with st.form("revoke-explanation", border=False):
            c1, c2 = st.columns([1, 3])
            which = c1.selectbox("Revoke #", [r.id for r in rows], key="rev_id")
            reason = c2.text_input("Why it is withdrawn", key="rev_why")
            if st.form_submit_button("Revoke") and which is not None:
                try:
                    revoke_explanation(app.store, user, int(which), reason)
                except (NotAllowed, ExplanationError) as exc:
                    st.error(plain(exc))
                    return
                st.rerun()


def _criteria() -> list[str]:
    return [*frameworks.BY_ID, *registry.checks()]
