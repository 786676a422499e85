"""Compliance: per-domain score by family (internet.nl-style), its trend, expiry horizons."""

from __future__ import annotations

import datetime as dt

import streamlit as st
from watchtower.dashboards.auth import User

from watchtower.compliance.score import (
    GROUP_TITLES,
    WEIGHT,
    placement,
    replay,
    score_table,
    section_scores,
    trend_streaks,
)

from .. import charts
from ..context import AppContext
from ..data import recent_sweeps, score_rows, trend_rows
from ..evidence import expiry_horizon


def render(app: AppContext, user: User) -> None:
    st.title("Compliance")
    st.caption(f"Score per domain and host: ok {WEIGHT['ok']:.0%}, warn {WEIGHT['warn']:.0%}, "
               "fail 0 %; error (the probe could not run) is not counted. Lowest first. The "
               "same score as the compliance reports.")
    where = placement(app.fleet.targets())
    scores = section_scores(score_rows(app.engine), where)
    if not scores:
        st.info("No results yet.")
        return
    groups, rows = score_table(scores)
    config = {g: st.column_config.ProgressColumn(GROUP_TITLES.get(g, g), min_value=0,
                                                 max_value=100, format="%d %%")
              for g in ["score", *groups]}
    st.dataframe(rows, hide_index=True, column_config=config,
                 height=min(38 + 35 * len(rows), 480))

    st.subheader("Trend")
    domains = [s.name for s in scores if s.kind == "domain"]
    c1, c2 = st.columns([3, 1])
    domain = c1.selectbox("Domain", domains, key="cmp_domain")
    days = c2.select_slider("Days", [7, 14, 30, 90], value=30, key="cmp_days")
    if domain:
        now = dt.datetime.now(dt.UTC)
        start = now - dt.timedelta(days=int(days))
        streaks = trend_streaks(trend_rows(app.engine, domain, start), domain, where)
        points = replay(streaks, start, now)
        if points:
            st.altair_chart(charts.score_trend_chart(points), width="stretch")
    sweeps = [s for s in recent_sweeps(app.engine) if s["schedule"] != "verify"]
    if sweeps:
        st.caption("Share of fail + error in each sweep, by schedule (the whole fleet)")
        st.altair_chart(charts.sweep_trend_chart(sweeps), width="stretch")

    st.subheader("Expiry horizon")
    horizon = expiry_horizon(app.engine)
    if horizon:
        st.caption("Certificates and DNSSEC signatures expiring soonest; the dashed line is 14 "
                   "days.")
        st.altair_chart(charts.expiry_chart(horizon), width="stretch")
    else:
        st.caption("No certificate or signature dates in the latest results.")
