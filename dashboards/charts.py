"""Charts where people would rather look than read (Vega-Lite through Altair).

Each function takes the plain rows `data`/`scoring`/`evidence` produce and returns a chart, so
the shapes are tested without a browser. One colour per status everywhere: green ok, amber warn,
purple error (the probe could not run), red fail, with a legend wherever colour says something.

Readable from the first sweep: a time axis spans at least `MIN_WINDOW` around the data (one
sweep is one instant, which Vega would stretch to the whole width with a single tick), its
ticks are picked here at round steps with a format that tells them apart, marks are clipped
to the axes, and a chart with one row per item is as tall as its rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

STATUS_DOMAIN = ["ok", "warn", "error", "fail"]
STATUS_RANGE = ["#2e9e44", "#e0a800", "#8e44ad", "#d62728"]
STATUS_SCALE = alt.Scale(domain=STATUS_DOMAIN, range=STATUS_RANGE)
STATUS_LEGEND = alt.Legend(orient="top", title="verdict", direction="horizontal")
MIN_SPAN = dt.timedelta(minutes=2)  # a one-probe streak still shows as a visible bar
MIN_WINDOW = dt.timedelta(minutes=30)  # the narrowest time axis (one sweep is one instant)
MAX_TICKS = 6
ROW_PX = 24  # one lane of the timeline, one bar of the expiry chart
BAR_PX = 16
AXIS_PX = 40  # room for the time axis and its labels under the rows
LATENCY_PX = 260

# Round tick steps, finest first, each with a label format that tells its ticks apart
# (a step of minutes needs the minutes, a step of days does not).
_STEPS: tuple[tuple[dt.timedelta, str], ...] = (
    *((dt.timedelta(minutes=m), "%H:%M") for m in (1, 2, 5, 10, 15, 30)),
    *((dt.timedelta(hours=h), "%H:%M") for h in (1, 2, 3, 6, 12)),
    *((dt.timedelta(days=d), "%b %d") for d in (1, 2, 7, 14, 28)),
    (dt.timedelta(days=91), "%b %Y"),
)


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """A time domain clamped around the data and its ticks, as Vega-Lite scale and axis."""

    start: dt.datetime
    end: dt.datetime
    ticks: tuple[dt.datetime, ...]
    label_format: str

    def scale(self) -> alt.Scale:
        return alt.Scale(type="utc", domain=[_ms(self.start), _ms(self.end)], nice=False)

    def axis(self) -> alt.Axis:
        return alt.Axis(values=[_ms(t) for t in self.ticks], format=self.label_format,
                        formatType="utc", labelAngle=0, labelOverlap=True, grid=True)

    def x(self, field: str) -> alt.X:
        return alt.X(field, title=None, scale=self.scale(), axis=self.axis())


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def time_axis(times: Sequence[dt.datetime]) -> TimeAxis:
    """The axis for `times`: at least MIN_WINDOW wide, padded 4 %, at most MAX_TICKS ticks."""
    now = dt.datetime.now(dt.UTC)
    lo, hi = (min(times), max(times)) if times else (now - MIN_WINDOW, now)
    if hi - lo < MIN_WINDOW:  # centre short data in the narrowest window
        middle = lo + (hi - lo) / 2
        lo, hi = middle - MIN_WINDOW / 2, middle + MIN_WINDOW / 2
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad
    step, fmt = next(((s, f) for s, f in _STEPS if (hi - lo) / s <= MAX_TICKS), _STEPS[-1])
    if fmt == "%H:%M" and hi - lo > dt.timedelta(hours=20):
        fmt = "%b %d %H:%M"  # hours apart over more than a day: the date tells them apart
    epoch = dt.datetime(2000, 1, 3, tzinfo=dt.UTC)  # a Monday: week steps start on Mondays
    first = epoch + step * -(-(lo - epoch) // step)  # the first round step at or after lo
    ticks = []
    while first <= hi:
        ticks.append(first)
        first += step
    return TimeAxis(lo, hi, tuple(ticks), fmt)


def status_timeline(history: list[dict[str, Any]], now: dt.datetime | None = None
                    ) -> alt.Chart:
    """One lane per check, one bar per unchanged verdict, coloured by status.

    A lane is ROW_PX tall whatever the number of checks, so labels never overlap; a first
    sweep's streaks (one instant each) still show as MIN_SPAN bars on a MIN_WINDOW axis.
    """
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
    axis = time_axis([*frame["from"], *frame["to"]])
    chart: alt.Chart = (alt.Chart(frame).mark_bar(height=BAR_PX, clip=True)
            .encode(x=axis.x("from:T"), x2="to:T",
                    y=alt.Y("check:N", title=None, sort=None,
                            axis=alt.Axis(labelLimit=220, labelOverlap=False)),
                    color=alt.Color("status:N", scale=STATUS_SCALE, legend=STATUS_LEGEND),
                    tooltip=["check", "status", "from:T", "to:T", "probes", "summary"])
            .properties(height=lanes_height(len(by_check))))
    return chart


def lanes_height(rows: int) -> int:
    """The height (px) of a chart with one ROW_PX lane per row plus its axis."""
    return ROW_PX * max(rows, 1) + AXIS_PX


def latency_chart(history: list[dict[str, Any]]) -> alt.Chart:
    """Mean probe duration of each streak over time, one line per check.

    Both axes are clamped to the data (time padded, duration from 0 to a little above the
    slowest) and the marks clipped, so no point is drawn outside the axes.
    """
    frame = pd.DataFrame([{"check": h["check"], "at": h["last_at"], "ms": h["avg_ms"],
                           "max ms": h["max_ms"]} for h in history],
                         columns=["check", "at", "ms", "max ms"])
    top = max(1.0, float(frame["ms"].max()) if len(frame) else 1.0) * 1.1
    chart: alt.Chart = (alt.Chart(frame).mark_line(point=True, clip=True)
            .encode(x=time_axis(list(frame["at"])).x("at:T"),
                    y=alt.Y("ms:Q", title="probe duration (ms)",
                            scale=alt.Scale(domain=[0, top], nice=True),
                            axis=alt.Axis(tickCount=5)),
                    color=alt.Color("check:N", legend=alt.Legend(orient="right", title="check")),
                    tooltip=["check", "at:T", alt.Tooltip("ms:Q", format=".0f"), "max ms"])
            .properties(height=LATENCY_PX))
    return chart


def expiry_chart(rows: list[dict[str, Any]], limit: int = 25, warn_days: int = 14
                 ) -> alt.LayerChart:
    """Days left of the soonest-expiring certificates and signatures, with a warning line.

    The bars are coloured by the check's verdict, so the chart carries the verdict legend.
    """
    top = rows[:limit]
    frame = pd.DataFrame([{"what": f"{r['target']} · {r['check'].split('.')[-2]}",
                           "days left": r["days_left"], "status": r["status"],
                           "expires": r["expires"]} for r in top],
                         columns=["what", "days left", "status", "expires"])
    days = [float(d) for d in frame["days left"]] + [float(warn_days)]
    domain = [min(0.0, *days), max(days) * 1.05]
    bars = (alt.Chart(frame).mark_bar(height=BAR_PX, clip=True)
            .encode(x=alt.X("days left:Q", scale=alt.Scale(domain=domain, nice=True),
                            axis=alt.Axis(tickCount=6)),
                    y=alt.Y("what:N", sort=None, title=None,
                            axis=alt.Axis(labelLimit=320, labelOverlap=False)),
                    color=alt.Color("status:N", scale=STATUS_SCALE, legend=STATUS_LEGEND),
                    tooltip=["what", "days left", "expires:T", "status"]))
    rule = (alt.Chart(pd.DataFrame({"days left": [warn_days]}))
            .mark_rule(color="#e0a800", strokeDash=[4, 4]).encode(x="days left:Q"))
    layered: alt.LayerChart = (bars + rule).properties(height=lanes_height(len(top)))
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
    chart: alt.Chart = (alt.Chart(frame).mark_line(point=True, clip=True)
            .encode(x=time_axis(list(frame["at"])).x("at:T"),
                    y=alt.Y("problems %:Q", scale=alt.Scale(domain=[0, 100])),
                    color=alt.Color("schedule:N", legend=alt.Legend(orient="right",
                                                                   title=None)),
                    tooltip=["at:T", "schedule", "problems %", "results"])
            .properties(height=200))
    return chart


def score_trend_chart(points: list[dict[str, Any]]) -> alt.Chart:
    """A domain's compliance score per family over time (overall drawn thicker)."""
    frame = pd.DataFrame(points, columns=["at", "family", "score"])
    chart: alt.Chart = (alt.Chart(frame).mark_line(point=True, clip=True)
            .encode(x=time_axis(list(frame["at"])).x("at:T"),
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
                    # Streamlit fits legend and bar into `height`: room for both, one row.
                    color=alt.Color("status:N", scale=STATUS_SCALE, legend=alt.Legend(
                        orient="top", direction="horizontal", title=None)),
                    order=alt.Order("order:Q"),
                    tooltip=["status", "results"])
            .transform_calculate(order=f"indexof({STATUS_DOMAIN!r}, datum.status)")
            .properties(height=72))
    return chart
