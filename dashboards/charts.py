"""Charts where people would rather look than read (Vega-Lite through Altair).

Each function takes the plain rows `data`/`scoring`/`evidence` produce and returns a chart, so
the shapes are tested without a browser. One colour per status everywhere: green ok, amber warn,
purple error (the probe could not run), red fail.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import altair as alt
import pandas as pd

STATUS_DOMAIN = ["ok", "warn", "error", "fail"]
STATUS_RANGE = ["#2e9e44", "#e0a800", "#8e44ad", "#d62728"]
STATUS_SCALE = alt.Scale(domain=STATUS_DOMAIN, range=STATUS_RANGE)
MIN_SPAN = dt.timedelta(minutes=2)  # a one-probe streak still shows as a visible bar
TIME_AXIS = alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=6)


def status_timeline(history: list[dict[str, Any]], now: dt.datetime | None = None
                    ) -> alt.Chart:
    """One lane per check, one bar per unchanged verdict, coloured by status."""
    now = now or dt.datetime.now(dt.UTC)
    rows = []
    by_check: dict[str, list[dict[str, Any]]] = {}
    for h in history:
        by_check.setdefault(h["check"], []).append(h)
    for spans in by_check.values():
        for i, h in enumerate(spans):
            # A streak lasts until the next one of the same check starts (or until now).
            end = spans[i + 1]["first_at"] if i + 1 < len(spans) else max(h["last_at"], now)
            end = max(end, h["first_at"] + MIN_SPAN)
            rows.append({"check": h["check"], "status": h["status"], "from": h["first_at"],
                         "to": end, "summary": h["summary"][:200], "probes": h["probes"]})
    frame = pd.DataFrame(rows, columns=["check", "status", "from", "to", "summary", "probes"])
    chart: alt.Chart = (alt.Chart(frame).mark_bar(height=14)
            .encode(x=alt.X("from:T", title=None, axis=TIME_AXIS), x2="to:T",
                    y=alt.Y("check:N", title=None, sort=None),
                    color=alt.Color("status:N", scale=STATUS_SCALE, legend=alt.Legend(
                        orient="top", title=None)),
                    tooltip=["check", "status", "from:T", "to:T", "probes", "summary"])
            .properties(height=max(60, 22 * len(by_check))))
    return chart


def latency_chart(history: list[dict[str, Any]]) -> alt.Chart:
    """Mean probe duration of each streak over time, one line per check."""
    frame = pd.DataFrame([{"check": h["check"], "at": h["last_at"], "ms": h["avg_ms"],
                           "max ms": h["max_ms"]} for h in history],
                         columns=["check", "at", "ms", "max ms"])
    chart: alt.Chart = (alt.Chart(frame).mark_line(point=True)
            .encode(x=alt.X("at:T", title=None, axis=TIME_AXIS),
                    y=alt.Y("ms:Q", title="probe duration (ms)"),
                    color=alt.Color("check:N", legend=alt.Legend(orient="right", title=None)),
                    tooltip=["check", "at:T", alt.Tooltip("ms:Q", format=".0f"), "max ms"])
            .properties(height=260))
    return chart


def expiry_chart(rows: list[dict[str, Any]], limit: int = 25, warn_days: int = 14
                 ) -> alt.LayerChart:
    """Days left of the soonest-expiring certificates and signatures, with a warning line."""
    top = rows[:limit]
    frame = pd.DataFrame([{"what": f"{r['target']} · {r['check'].split('.')[-2]}",
                           "days left": r["days_left"], "status": r["status"],
                           "expires": r["expires"]} for r in top],
                         columns=["what", "days left", "status", "expires"])
    bars = (alt.Chart(frame).mark_bar()
            .encode(x=alt.X("days left:Q"),
                    y=alt.Y("what:N", sort=None, title=None, axis=alt.Axis(labelLimit=320)),
                    color=alt.Color("status:N", scale=STATUS_SCALE, legend=None),
                    tooltip=["what", "days left", "expires:T", "status"]))
    rule = (alt.Chart(pd.DataFrame({"days left": [warn_days]}))
            .mark_rule(color="#e0a800", strokeDash=[4, 4]).encode(x="days left:Q"))
    layered: alt.LayerChart = (bars + rule).properties(height=max(80, 26 * len(top)))
    return layered


def sweep_trend_chart(sweeps: list[dict[str, Any]]) -> alt.Chart:
    """Share of problems (fail + error) in each finished sweep, one line per schedule.

    A share, not a count: the scheduler sweeps check groups on their own intervals, so sweeps
    differ in size and only their proportions compare over time.
    """
    rows = [{"at": s["started_at"], "schedule": s["schedule"],
             "problems %": round(100.0 * (s["fail"] + s["error"]) / s["total"], 1),
             "results": s["total"]}
            for s in sweeps if s["state"] == "done" and s["total"]]
    frame = pd.DataFrame(rows, columns=["at", "schedule", "problems %", "results"])
    chart: alt.Chart = (alt.Chart(frame).mark_line(point=True)
            .encode(x=alt.X("at:T", title=None, axis=TIME_AXIS),
                    y=alt.Y("problems %:Q", scale=alt.Scale(domain=[0, 100])),
                    color=alt.Color("schedule:N", legend=alt.Legend(orient="right",
                                                                   title=None)),
                    tooltip=["at:T", "schedule", "problems %", "results"])
            .properties(height=200))
    return chart


def score_trend_chart(points: list[dict[str, Any]]) -> alt.Chart:
    """A domain's compliance score per family over time (overall drawn thicker)."""
    frame = pd.DataFrame(points, columns=["at", "family", "score"])
    chart: alt.Chart = (alt.Chart(frame).mark_line(point=True)
            .encode(x=alt.X("at:T", title=None, axis=TIME_AXIS),
                    y=alt.Y("score:Q", scale=alt.Scale(domain=[0, 100]), title="score %"),
                    color=alt.Color("family:N", legend=alt.Legend(orient="right", title=None)),
                    strokeWidth=alt.condition(alt.datum.family == "overall", alt.value(4),
                                              alt.value(1.5)),
                    tooltip=["family", "at:T", alt.Tooltip("score:Q", format=".0f")])
            .properties(height=280))
    return chart


def status_bar(counts: dict[str, int]) -> alt.Chart:
    """One horizontal stacked bar of result counts by status (the fleet at a glance)."""
    frame = pd.DataFrame([{"status": s, "results": counts.get(s, 0), "all": "fleet"}
                          for s in STATUS_DOMAIN])
    chart: alt.Chart = (alt.Chart(frame).mark_bar(height=26)
            .encode(x=alt.X("results:Q", stack="normalize", axis=None),
                    y=alt.Y("all:N", axis=None),
                    color=alt.Color("status:N", scale=STATUS_SCALE, legend=None),
                    order=alt.Order("order:Q"),
                    tooltip=["status", "results"])
            .transform_calculate(order=f"indexof({STATUS_DOMAIN!r}, datum.status)")
            .properties(height=40))
    return chart
