"""The shipped Prometheus/Alertmanager/Grafana files, checked by the real tools.

`promtool check rules` and `promtool test rules` run the shipped rules (with their production
`for` values, in promtool's simulated time); every watchtower_* name the rules and the Grafana
dashboard use must be one the exporter really writes.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.servers.base import require, tool
from tests.unit.alerts.helpers import T0, fleet, result, store
from watchtower.alerting.processor import AlertProcessor
from watchtower.metrics import MetricsPage

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "dashboards" / "prometheus"
GRAFANA = ROOT / "dashboards" / "grafana" / "watchtower.json"
NAME = re.compile(r"\bwatchtower_[a-z0-9_]+")


def run(*argv: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


def test_promtool_check_rules() -> None:
    require("promtool", why="alert rules are checked by promtool")
    proc = run(tool("promtool"), "check", "rules", "watchtower-alerts.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 14 rules found" in proc.stdout


def test_promtool_test_rules() -> None:
    require("promtool", why="alert rules are unit-tested by promtool")
    proc = run(tool("promtool"), "test", "rules", "watchtower-alerts.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_rule_has_severity_for_summary_and_runbook() -> None:
    import yaml

    doc = yaml.safe_load((PROM / "watchtower-alerts.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    tested = (PROM / "watchtower-alerts.test.yml").read_text()
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        assert f"alertname: {rule['alert']}\n" in tested, f"{rule['alert']} has no promtool test"
    assert sum("for" in r for r in rules) >= len(rules) - 1  # only the remediation edge has none


def test_example_prometheus_config() -> None:
    require("promtool", why="the example scrape config is checked by promtool")
    proc = run(tool("promtool"), "check", "config", "prometheus.example.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_example_alertmanager_config() -> None:
    require("amtool", why="the example Alertmanager route is checked by amtool")
    proc = run(tool("amtool"), "check-config", "alertmanager.example.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def exported_names(tmp_path: Path) -> set[str]:
    """Every family a store with one of everything exports (prometheus-client parses it)."""
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet())
    rs = [result("fail", T0),
          result("ok", T0, check="dns.dnssec.expiry",
                 evidence={"metrics": {"rrsig_expiry_timestamp_seconds": 2e9}}),
          result("ok", T0, check="web.tls.certificate", family="web",
                 evidence={"leaf": {"not_after": "2030-01-01T00:00:00+00:00"}})]
    s.record(rs)
    proc.process(rs)
    text = MetricsPage(s, cache_seconds=0, max_stale=0).render().decode()
    names = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        names.update(x.name for x in fam.samples)
    return names


def test_rules_and_dashboard_use_only_exported_names(tmp_path: Path) -> None:
    names = exported_names(tmp_path)
    used = set(NAME.findall((PROM / "watchtower-alerts.yml").read_text()))
    used |= set(NAME.findall(GRAFANA.read_text()))
    assert used, "no metric names found"
    assert used <= names, f"not exported: {sorted(used - names)}"


def test_grafana_dashboard_is_valid_json_with_queries() -> None:
    dash = json.loads(GRAFANA.read_text())
    assert dash["uid"] == "watchtower-fleet"
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10 and all(exprs)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_exposition_passes_promtool_check_metrics(tmp_path: Path) -> None:
    require("promtool", why="metric naming is linted by promtool")
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet())
    rs = [result("fail", T0), result("ok", T0, check="web.tls.certificate", family="web",
                                      evidence={"leaf": {"not_after": "2030-01-01T00:00:00"}}),
          result("warn", T0, check="drift.version", family="drift")]
    s.record(rs)
    proc.process(rs)
    text = MetricsPage(s, cache_seconds=0, max_stale=0).render().decode()
    check = subprocess.run([tool("promtool"), "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check.stdout + check.stderr
