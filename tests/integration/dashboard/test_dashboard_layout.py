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
from tests.unit.dashboard.seed import add_proposal
from watchtower.report.hints import HINTS

VIEWPORT = {"width": 1366, "height": 768}
# The glide grid's scroller: as wide as its columns (scrollWidth) in the room it has.
GRID_WIDTHS = "s => [s.scrollWidth, s.clientWidth]"
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
# Every page and the tabs that hold tables, with how many tables each must draw at least
# (the lab's sweep gives all of these; Reports has none, its sideways scroll is still checked).
VISITS: list[tuple[str, str | None, int]] = [
    ("Overview", None, 2),  # names x families, open problems (and changes, when any)
    ("Target", "Flips", 1),
    ("Compliance", None, 1),
    ("Drift", None, 1),
    ("Remediations", "History", 2),  # the proposals and one's audit trail
    ("Remediations", "Dashboard audit", 1),
    ("Reports", None, 0),
]


def _page(browser: Any) -> Any:
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    return page


def _grids(page: Any) -> list[tuple[int, int]]:
    """Width and room of every visible table, each scrolled to first: a grid off-screen has
    not drawn its scroller yet, and measuring its frame instead would always fit."""
    out = []
    for grid in page.locator("[data-testid='stDataFrame']:visible").all():
        grid.scroll_into_view_if_needed()
        scroller = grid.locator(".dvn-scroller").first
        scroller.wait_for(state="attached")
        scroll, client = scroller.evaluate(GRID_WIDTHS)
        out.append((int(scroll), int(client)))
    return out


def _assert_fits(page: Any, what: str, least: int) -> None:
    grids = _grids(page)
    assert len(grids) >= least, f"{what}: {len(grids)} tables drawn, expected {least}"
    for scroll, client in grids:
        assert scroll <= client + 1, f"{what}: a table is {scroll} px wide in {client} px"
    assert page.evaluate(PAGE_OVERFLOW) <= 0, f"{what} scrolls sideways"


def _read_a_problem_in_full(page: Any, store: Any) -> None:
    """A cut summary or fix is read on selection: clicking the first open problem's row shows
    its how-to-fix whole beneath the table (glide draws on a canvas: the row is clicked at its
    selection box, one header and half a row down)."""
    first = data.problems(store, limit=1)[0]
    grid = page.locator(".st-key-ov_problems [data-testid='stDataFrame']")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 20, box["y"] + 35 + 17)
    page.get_by_text("How to fix:").first.wait_for()
    _settle(page)
    assert first["how to fix"] in page.inner_text("body").replace("\n", " ")


def test_every_table_fits_a_laptop_screen(dashboard) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    url, store, tmp = dashboard
    add_proposal(store, target="alpha.test")  # the Remediations history has a row
    pw, browser = _browser(tmp)
    try:
        page = _page(browser)
        _sign_in(page, url, "olga")
        _settle(page)
        for name, tab, least in VISITS:
            if name != "Overview":
                _open(page, name)
            if tab is not None:
                page.get_by_role("tab", name=tab).click()
                _settle(page)
            what = f"{name}/{tab}" if tab else name
            _assert_fits(page, what, least)
            if name == "Overview":
                _read_a_problem_in_full(page, store)
                _assert_fits(page, "Overview with a problem selected", least)
            _save(page, tmp, f"{what.lower().replace('/', '-').replace(' ', '-')}-1366")
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
