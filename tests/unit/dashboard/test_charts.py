"""Chart builders: valid Vega-Lite with the fleet's status colours and the right data."""

from __future__ import annotations

import datetime as dt

from watchtower.dashboards import charts

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _history() -> list[dict]:
    def h(check: str, status: str, first: int, last: int) -> dict:
        return {"check": check, "status": status, "summary": status, "probes": 1,
                "first_at": T0 + dt.timedelta(hours=first),
                "last_at": T0 + dt.timedelta(hours=last), "avg_ms": 10.0 + first,
                "max_ms": 20.0}
    return [h("dns.caa", "ok", 0, 5), h("dns.caa", "fail", 6, 6), h("web.hsts", "warn", 1, 2)]


def test_status_timeline_spans_until_the_next_streak() -> None:
    chart = charts.status_timeline(_history(), now=T0 + dt.timedelta(hours=10))
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["color"]["scale"]["range"] == charts.STATUS_RANGE
    frame = chart.data
    caa = frame[frame["check"] == "dns.caa"].sort_values("from")
    assert list(caa["to"]) == [T0 + dt.timedelta(hours=6), T0 + dt.timedelta(hours=10)]


def test_other_charts_render_to_vega_lite() -> None:
    assert charts.latency_chart(_history()).to_dict()["encoding"]["y"]["field"] == "ms"
    expiry = charts.expiry_chart([{"target": "a.test:443", "check": "web.tls.certificate",
                                   "status": "warn", "days_left": 3.5,
                                   "expires": T0}])
    assert len(expiry.to_dict()["layer"]) == 2  # the bars and the 14-day rule
    sweeps = [{"started_at": T0, "schedule": "every:300s", "state": "done", "total": 10,
               "ok": 7, "warn": 1, "fail": 1, "error": 1},
              {"started_at": T0, "schedule": "every:300s", "state": "running", "total": 10,
               "ok": 0, "warn": 0, "fail": 0, "error": 0}]
    trend = charts.sweep_trend_chart(sweeps)
    assert list(trend.data["problems %"]) == [20.0]  # the unfinished sweep is left out
    points = [{"at": T0, "family": "overall", "score": 50.0}]
    assert charts.score_trend_chart(points).to_dict()["encoding"]["y"]["scale"]["domain"] == [
        0, 100]
    bar = charts.status_bar({"ok": 3, "fail": 1})
    assert list(bar.data["results"]) == [3, 0, 0, 1]


def _labels(axis: charts.TimeAxis) -> list[str]:
    return [t.strftime(axis.label_format) for t in axis.ticks]


def test_a_first_sweep_gets_a_readable_time_axis() -> None:
    """One sweep is one instant: the axis still spans MIN_WINDOW with distinct round ticks."""
    axis = charts.time_axis([T0, T0 + dt.timedelta(seconds=20)])
    assert axis.end - axis.start >= charts.MIN_WINDOW
    assert axis.start < T0 and axis.end > T0 + dt.timedelta(seconds=20)  # points inside
    assert 2 <= len(axis.ticks) <= charts.MAX_TICKS
    assert all(axis.start <= t <= axis.end for t in axis.ticks)
    labels = _labels(axis)
    assert len(set(labels)) == len(labels), labels
    spec = axis.axis().to_dict()
    assert spec["formatType"] == "utc" and len(spec["values"]) == len(axis.ticks)


def test_time_axis_ticks_stay_distinct_over_any_span() -> None:
    for span in (dt.timedelta(hours=3), dt.timedelta(hours=30), dt.timedelta(days=30),
                 dt.timedelta(days=400)):
        axis = charts.time_axis([T0, T0 + span])
        labels = _labels(axis)
        assert 2 <= len(labels) <= charts.MAX_TICKS, (span, labels)
        assert len(set(labels)) == len(labels), (span, labels)


def test_timeline_lanes_are_sized_to_the_checks() -> None:
    history = [h | {"check": f"check.{i}"} for i, h in enumerate(_history() * 3)]
    spec = charts.status_timeline(history, now=T0 + dt.timedelta(hours=10)).to_dict()
    assert spec["height"] == charts.lanes_height(9) == 9 * charts.ROW_PX + charts.AXIS_PX
    assert spec["mark"]["height"] < charts.ROW_PX and spec["mark"]["clip"] is True
    assert spec["encoding"]["y"]["axis"]["labelOverlap"] is False
    assert spec["encoding"]["color"]["legend"]["title"] == "verdict"


def test_latency_points_stay_inside_the_axes() -> None:
    spec = charts.latency_chart(_history()).to_dict()
    assert spec["mark"]["clip"] is True
    low, high = spec["encoding"]["y"]["scale"]["domain"]
    assert low == 0 and high > max(h["avg_ms"] for h in _history())
    start, end = spec["encoding"]["x"]["scale"]["domain"]
    times = [h["last_at"].timestamp() * 1000 for h in _history()]
    assert start < min(times) and end > max(times)


def test_colour_that_encodes_a_verdict_has_a_legend() -> None:
    expiry = charts.expiry_chart([{"target": "a.test:443", "check": "web.tls.certificate",
                                   "status": "warn", "days_left": 3.5, "expires": T0},
                                  {"target": "b.test", "check": "dns.dnssec.expiry",
                                   "status": "fail", "days_left": -1.0, "expires": T0}])
    bars = expiry.to_dict()["layer"][0]
    assert bars["encoding"]["color"]["legend"]["title"] == "verdict"
    assert bars["encoding"]["x"]["scale"]["domain"][0] <= -1.0
    assert expiry.to_dict()["height"] == charts.lanes_height(2)
    assert charts.status_bar({"ok": 1}).to_dict()["encoding"]["color"]["legend"] is not None
