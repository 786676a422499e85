"""The dashboard's layout at 1366x768 (the narrowest laptop screen it is made for), in Debian's
Chromium against a real sweep of the lab: the main tables fit without horizontal scrolling,
the Target timeline is as tall as its lanes, text shows no markdown escapes, and a failing
check has its fix hint beside it. Layout is asserted from the DOM, never from pixels.

The store, the lab sweep and the served dashboard are the `dashboard` fixture of
test_dashboard_e2e (one per module); under CI=true a missing Chromium or Playwright fails.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchtower.dashboards import charts, data

from tests.integration.dashboard.test_dashboard_e2e import (  # noqa: F401 (the fixture)
    WAIT_MS,
    _browser,
    _open,
    _save,
    _settle,
    _sign_in,
    dashboard,
)
from watchtower.report.hints import HINTS

VIEWPORT = {"width": 1366, "height": 768}
GRID_OVERFLOW = """() => [...document.querySelectorAll("[data-testid='stDataFrame']")]
  .filter(e => e.offsetParent !== null)
  .map(e => { const s = e.querySelector('.dvn-scroller') || e;
              return [s.scrollWidth, s.clientWidth]; })"""
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _page(browser: Any) -> Any:
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    return page


def _grids(page: Any) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in page.evaluate(GRID_OVERFLOW)]


def _assert_fits(page: Any, what: str, first: int | None = None) -> None:
    grids = _grids(page)[:first]
    assert grids, f"no table drawn on {what}"
    for scroll, client in grids:
        assert scroll <= client + 1, f"{what}: a table is {scroll} px wide in {client} px"
    assert page.evaluate(PAGE_OVERFLOW) <= 0, f"{what} scrolls sideways"


def test_main_tables_fit_a_laptop_screen(dashboard) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    url, _store, tmp = dashboard
    pw, browser = _browser(tmp)
    try:
        page = _page(browser)
        _sign_in(page, url, "olga")
        _settle(page)
        _assert_fits(page, "Overview", first=1)  # targets x families, every column on screen
        _save(page, tmp, "overview-1366")
        _open(page, "Drift")
        _assert_fits(page, "Drift", first=1)  # services: declared vs running
        _save(page, tmp, "drift-1366")
        assert "\\" not in page.inner_text("body")
    finally:
        browser.close()
        pw.stop()


def test_target_timeline_rows_hints_and_plain_text(dashboard) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    url, store, tmp = dashboard
    name, kind, _worst = data.target_list(store)[0]  # the page opens the worst target
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    lanes = len({h["check"] for h in data.target_history(store, name, since, kind)})
    failing = [s for s in data.target_states(store, name, kind) if s.status == "fail"]
    pw, browser = _browser(tmp)
    try:
        page = _page(browser)
        _sign_in(page, url, "olga")
        _settle(page)
        _open(page, "Target")
        body = page.inner_text("body")
        assert "\\" not in body, "a markdown escape is on screen"
        for state in failing:  # each failing check with its fix hint beside it
            hint = HINTS.get(state.check_id)
            if hint:
                assert hint in body.replace("\n", " "), state.check_id
        page.get_by_role("tab", name="Timeline").click()
        _settle(page)
        chart = page.locator("[data-testid='stVegaLiteChart']:visible").first
        chart.wait_for()
        box = chart.bounding_box()
        assert box is not None
        # Every lane keeps its ROW_PX (labels cannot overlap); the legend adds a little.
        assert box["height"] >= charts.lanes_height(lanes), (box, lanes)
        assert box["height"] <= charts.lanes_height(lanes) + 120, (box, lanes)
        assert box["x"] + box["width"] <= VIEWPORT["width"]
        _save(page, tmp, "target-timeline-1366")
    finally:
        browser.close()
        pw.stop()
