"""A real Prometheus scrapes a real `watchtower run` probing the lab, with the shipped rules.

The lab's faults (bravo.test has one name server; video.bravo.test serves an expired certificate)
must show up as series and as firing alerts through Prometheus's HTTP API.

About `for`: the shipped rules keep production values (5 minutes to an hour). Their timing is
proven by `promtool test rules` in simulated time (test_rules_and_configs.py); this test proves
the wiring (names, labels, expressions against real scrapes), so it loads a copy of the shipped
file whose only change is every `for:` set to 1s. Everything else is byte for byte the shipped
rule file, and the copy is checked with promtool before use.

The same watchtower process then gets SIGHUP twice: a broken file is rejected (the process keeps
running with the old settings), a valid one with a new /metrics password takes effect at once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers.base import free_port, require, tool
from tests.servers.prometheus import Prometheus

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "dashboards" / "prometheus" / "watchtower-alerts.yml"
PASSWORD = "scrape-pass-1"


def fleet_text(lab_fleet: str, port: int, db: Path, password_env: str) -> str:
    text = lab_fleet.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"')
    text = re.sub(r'database = "sqlite:///[^"]+"', f'database = "sqlite:///{db}"', text)
    auth = (f'auth = {{ username = "prometheus", password = {{ "$env" = "{password_env}" }} }}\n')
    return text.replace("[metrics]\n", "[metrics]\n" + auth, 1)


@pytest.fixture(scope="module")
def watchtower_run(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("wt-run")
    port = free_port()
    config = work / "fleet.toml"
    config.write_text(fleet_text(lab.fleet_path.read_text(), port, work / "wt.db", "WT_METRICS_PW"))
    env = {**os.environ, "WT_METRICS_PW": PASSWORD, "WT_METRICS_PW2": "scrape-pass-2"}
    log = (work / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "watchtower.cli", "run", "-c", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail(f"watchtower run did not come up:\n{(work / 'run.log').read_text()}")
        yield proc, port, config
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def short_for_rules(dest: Path) -> Path:
    text = RULES.read_text()
    short = re.sub(r"(?m)^(\s+)for: \S+$", r"\1for: 1s", text)
    assert short.count("for: 1s") == text.count("for: ")
    dest.write_text(short)
    check = subprocess.run([tool("promtool"), "check", "rules", str(dest)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    return dest


def scrape(port: int, password: str | None) -> requests.Response:
    auth = ("prometheus", password) if password is not None else None
    return requests.get(f"http://127.0.0.1:{port}/metrics", auth=auth, timeout=10)


def test_prometheus_sees_series_and_fires_alerts_for_the_lab_faults(
        watchtower_run, prometheus_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    require("prometheus", "promtool", why="a real Prometheus scrapes watchtower")
    _proc, port, _config = watchtower_run
    rules = short_for_rules(tmp_path / "watchtower-alerts.yml")
    prom: Prometheus = prometheus_factory(
        [], [rules], scrape_interval="1s", job_name="unused",
        extra_scrape_configs=[{
            "job_name": "watchtower",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            "basic_auth": {"username": "prometheus", "password": PASSWORD},
        }])
    assert prom.wait_for(lambda: prom.query_value('up{job="watchtower"}') == 1.0, timeout=20)
    # the series exist, with the lab's faults in them
    bravo_ns = 'watchtower_check_status{check="dns.ns.count",target="bravo.test",status="fail"}'
    assert prom.wait_for(lambda: prom.query_value(bravo_ns) == 1.0, timeout=30)
    for name in ("watchtower_check_last_run_timestamp_seconds", "watchtower_check_duration_seconds",
                 "watchtower_build_info", "watchtower_checks", "watchtower_scheduler_lag_seconds",
                 "watchtower_notification_outbox", "watchtower_alerts_firing"):
        assert prom.query(name), f"{name} missing"
    expired = prom.wait_for(lambda: prom.query(
        'watchtower_certificate_expiry_timestamp_seconds{target=~"video.bravo.test:.*"} < time()'),
        timeout=30)
    assert expired[0]["metric"]["check"] == "web.tls.certificate"

    def firing() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for a in prom.alerts():
            if a["state"] == "firing":
                out.setdefault(a["labels"]["alertname"], set()).add(a["labels"].get("target", ""))
        return out

    def lab_faults_fire() -> dict[str, set[str]] | None:
        now = firing()
        ok = ("bravo.test" in now.get("WatchtowerCheckFailing", set())
              and any(t.startswith("video.bravo.test:")
                      for t in now.get("WatchtowerCertificateExpiring", set())))
        return now if ok else None

    now = prom.wait_for(lab_faults_fire, timeout=30)
    assert "WatchtowerDown" not in now and "WatchtowerNotProbing" not in now
    assert "alpha.test" not in now.get("WatchtowerCheckFailing", set())  # healthy zone is quiet
    alert = next(a for a in prom.alerts() if a["labels"]["alertname"] == "WatchtowerCheckFailing"
                 and a["labels"].get("target") == "bravo.test"
                 and a["labels"]["check"] == "dns.ns.count")
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == "dns.ns.count fails on bravo.test"
    assert alert["annotations"]["runbook_url"].endswith("#watchtowercheckfailing")


def test_live_scrape_passes_promtool_and_needs_the_password(watchtower_run) -> None:  # type: ignore[no-untyped-def]
    require("promtool", why="metric naming is linted by promtool")
    _proc, port, _config = watchtower_run
    assert scrape(port, None).status_code == 401
    assert scrape(port, "wrong").status_code == 401
    r = scrape(port, PASSWORD)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run([tool("promtool"), "check", "metrics"], input=r.text,
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and (check.stdout + check.stderr) == "", check.stdout + check.stderr


def test_sighup_rejects_a_bad_config_and_applies_a_good_one(watchtower_run) -> None:  # type: ignore[no-untyped-def]
    proc, port, config = watchtower_run
    good = config.read_text()
    try:
        config.write_text(good.replace("[probe]\n", "[probe]\nno_such_key = 1\n", 1))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None, "a bad config on SIGHUP must not stop watchtower"
        assert scrape(port, PASSWORD).status_code == 200  # old settings still in force
        config.write_text(good.replace("WT_METRICS_PW", "WT_METRICS_PW2"))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and scrape(port, "scrape-pass-2").status_code != 200:
            time.sleep(0.2)
        assert scrape(port, "scrape-pass-2").status_code == 200
        assert scrape(port, PASSWORD).status_code == 401
        assert proc.poll() is None
    finally:
        config.write_text(good)
