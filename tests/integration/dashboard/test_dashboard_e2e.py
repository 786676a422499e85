"""End to end: a real sweep of the lab fills a store; `watchtower dashboard` serves it on
loopback; headless Debian Chromium (driven by Playwright, never a downloaded browser) signs in,
looks at every page, approves a plan as an operator and finds the buttons disabled as a viewer.

Screenshots go to the test's temporary directory, and also to $WATCHTOWER_SCREENSHOTS when set
(that is how docs/screenshots/overview.png is refreshed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from watchtower.dashboards.auth import add_user

from tests.servers.base import find_tool, require, require_module
from tests.unit.dashboard.seed import PASSWORDS, add_proposal
from watchtower.config import database_url, load_fleet
from watchtower.probe.sweep import run_sweep, select_checks
from watchtower.remediation.engine import Remediator
from watchtower.store import Store

CHROMIUM = "/usr/bin/chromium"
PAGES = ["Target", "Compliance", "Drift", "Remediations", "Reports"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("dashboard did not become healthy")


@pytest.fixture(scope="module")
def dashboard(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, Path]]:  # type: ignore[no-untyped-def]
    require("chromium", why="the dashboard is checked in a real browser")
    require_module("playwright", why="Playwright drives Debian's chromium")
    tmp = tmp_path_factory.mktemp("dashboard")
    doc = tomllib.loads(Path(lab.fleet_path).read_text())
    doc["store"]["database"] = f"sqlite:///{tmp / 'wt.db'}"
    doc["remediation"] = {"policies": {"dns.records": "approve"}}
    doc["dashboard"] = {"users_file": str(tmp / "users.toml"), "session_minutes": 30}
    fleet_path = tmp / "fleet.toml"
    fleet_path.write_text(tomli_w.dumps(doc))
    add_user(tmp / "users.toml", "olga", "operator", PASSWORDS["olga"])
    add_user(tmp / "users.toml", "vic", "viewer", PASSWORDS["vic"])
    fleet = load_fleet(fleet_path)
    store = Store(database_url(fleet.store))
    outcome = run_sweep(fleet, store, select_checks())
    assert len(outcome.results) > 100
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "watchtower.cli", "dashboard", "-c",
                             str(fleet_path), "--address", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_healthy(url, proc)
        yield url, store, tmp
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        store.close()


def _browser(tmp: Path):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    # Playwright gives the browser a fresh temporary profile itself (no --user-data-dir).
    browser = pw.chromium.launch(executable_path=find_tool("chromium") or CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"])
    return pw, browser


def _sign_in(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Fleet overview").wait_for(timeout=30_000)


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the script run is over and tables and charts have drawn."""
    page.wait_for_timeout(300)
    # No script running, and no element still a loading skeleton (tables, charts, metrics).
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stStatusWidget']\")"
        " && !document.querySelector(\"[data-testid='stSkeleton']\")", timeout=30_000)
    grids = page.locator("[data-testid='stDataFrame']:visible")
    if grids.count():  # hidden (tabs) and off-screen grids draw lazily; wait for the first
        grids.first.locator("canvas").first.wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(700)


def _open(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("section[data-testid='stSidebar']").get_by_text(name, exact=False).click()
    page.get_by_role("heading", name=name).first.wait_for(timeout=30_000)
    _settle(page)


def _save(page, tmp: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    path = tmp / "shots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("WATCHTOWER_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def test_operator_signs_in_sees_every_page_and_approves(dashboard) -> None:  # type: ignore[no-untyped-def]
    url, store, tmp = dashboard
    rid = add_proposal(store)
    pw, browser = _browser(tmp)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 1250})
        page.goto(url)
        assert page.get_by_role("heading", name="Fleet overview").count() == 0
        _sign_in(page, url, "olga")
        _settle(page)
        assert "Names by family" in page.inner_text("body")
        assert _save(page, tmp, "overview").stat().st_size > 20_000
        for name in PAGES:
            _open(page, name)
            _save(page, tmp, name.lower())
        _open(page, "Remediations")
        page.get_by_role("button", name="Approve").first.click()
        page.get_by_text(f"#{rid} approved by olga").wait_for(timeout=30_000)
        _save(page, tmp, "approved")
    finally:
        browser.close()
        pw.stop()
    remediator = Remediator.__new__(Remediator)
    remediator.store = store
    row = remediator.get(rid)
    assert row is not None and (row.state, row.approved_by) == ("approved", "olga")


def test_viewer_cannot_approve_in_the_browser(dashboard) -> None:  # type: ignore[no-untyped-def]
    url, store, tmp = dashboard
    rid = add_proposal(store, target="charlie.test")
    pw, browser = _browser(tmp)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        _sign_in(page, url, "vic")
        _open(page, "Remediations")
        approve = page.get_by_role("button", name="Approve").first
        approve.wait_for(timeout=30_000)
        assert approve.is_disabled()
        assert "viewer" in page.inner_text("body")
        _save(page, tmp, "viewer-remediations")
    finally:
        browser.close()
        pw.stop()
    remediator = Remediator.__new__(Remediator)
    remediator.store = store
    row = remediator.get(rid)
    assert row is not None and row.state == "awaiting_approval"
