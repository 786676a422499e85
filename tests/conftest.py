"""Shared test set-up.

Real servers come from tests/servers (one instance per test session). Under CI=true a test whose
server or tool is missing fails instead of skipping: CI must never pass by not testing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = ["tests.servers.plugin"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_dir() -> Path | None:
    """The steering repo's shared/ (specs, catalog): ../shared beside the clone, or env."""
    env = os.environ.get("WATCHTOWER_SHARED")
    for candidate in ([Path(env)] if env else []) + [ROOT.parent / "shared", ROOT / "shared"]:
        if (candidate / "specs").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        if IN_CI:
            pytest.fail("shared/ (specs) not found beside the clone; set WATCHTOWER_SHARED")
        pytest.skip("shared/ not found")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests under tests/integration so `-m 'not integration'` gives a fast loop."""
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The demo lab (3 domains, the demo faults), started once per session on free ports."""
    from watchtower.lab import Lab

    lab = Lab(tmp_path_factory.mktemp("lab"), domains=3, dns_port=0, https_port=0,
              metrics_listen="127.0.0.1:0")
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def lab_fleet(lab):  # type: ignore[no-untyped-def]
    from watchtower.config import load_fleet

    return load_fleet(lab.fleet_path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI=true a skipped test is a failed test: CI must never pass by not testing."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which is a failure: {report.longrepr}"
