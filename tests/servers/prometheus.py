"""Prometheus and promtool (Debian prometheus) for the metrics, rules and alert tests.

watchtower ships an exporter and alerting rules; the only convincing test of those is that the
real promtool accepts them and that a real Prometheus scrapes the exporter and fires the alerts.
A server is cheap (well under a second to ready) so tests start their own with their own
targets through the prometheus_factory fixture.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import requests

from tests.servers.base import (
    ManagedProcess,
    Server,
    ServerError,
    find_tool,
    free_port,
    tool,
)

T = TypeVar("T")


def prometheus_path() -> str | None:
    """Absolute path of the prometheus server binary, or None when not installed."""
    return find_tool("prometheus")


def promtool_path() -> str | None:
    """Absolute path of promtool, or None when not installed."""
    return find_tool("promtool")


def _promtool(*args: str, input: str | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [tool("promtool"), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def promtool_check_rules(path: Path | str) -> tuple[int, str]:
    """`promtool check rules FILE` -> (exit code, combined output)."""
    return _promtool("check", "rules", str(path))


def promtool_test_rules(path: Path | str) -> tuple[int, str]:
    """`promtool test rules FILE` (unit tests for alerts) -> (exit code, output).

    A failing case gives exit code 1 and 'FAILED:' in the output.
    """
    return _promtool("test", "rules", str(path))


def promtool_check_config(path: Path | str) -> tuple[int, str]:
    """`promtool check config FILE` -> (exit code, output)."""
    return _promtool("check", "config", str(path))


def promtool_check_metrics(text: str) -> tuple[int, str]:
    """`promtool check metrics` on exposition text (lint: naming, HELP, units) -> (rc, output)."""
    return _promtool("check", "metrics", input=text)


class Prometheus(Server):
    """A Prometheus server scraping the given host:port targets every scrape_interval.

    The config is written as JSON, which is valid YAML, so no YAML library is needed.
    Lifecycle API is on so tests can reload changed rule files.
    """

    def __init__(
        self,
        workdir: Path,
        scrape_targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
        *,
        evaluation_interval: str | None = None,
        metrics_path: str = "/metrics",
        job_name: str = "watchtower",
        extra_scrape_configs: Sequence[dict[str, Any]] = (),
        port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.scrape_targets = list(scrape_targets)
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.metrics_path = metrics_path
        self.job_name = job_name
        self.extra_scrape_configs = list(extra_scrape_configs)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = self.workdir / "prometheus.yml"
        self.process: ManagedProcess | None = None
        self._http = requests.Session()

    def config(self) -> dict[str, Any]:
        """The prometheus.yml content as a dict."""
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
                "scrape_timeout": self.scrape_interval,
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": self.job_name,
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.scrape_targets}],
                },
                *self.extra_scrape_configs,
            ],
        }

    def start(self) -> Self:
        """Write the config, start prometheus, wait for /-/ready."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self.process = ManagedProcess(
            [
                tool("prometheus"),
                f"--config.file={self.config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            name="prometheus",
            logdir=self.workdir,
            grace=10.0,
        ).start()
        self.process.wait_ready(
            lambda: self._http.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
            timeout=60,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self._http.close()

    def reload(self, rule_files: Sequence[Path] | None = None) -> None:
        """Rewrite the config (new rule files, if given) and POST /-/reload."""
        if rule_files is not None:
            self.rule_files = [Path(p).resolve() for p in rule_files]
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        r = self._http.post(f"{self.url}/-/reload", timeout=10)
        if r.status_code != 200:
            raise ServerError(f"prometheus reload -> {r.status_code}: {r.text}")

    # -- API ----------------------------------------------------------------------------------

    def _get(self, path: str, **params: str) -> Any:
        r = self._http.get(f"{self.url}{path}", params=params, timeout=10)
        body = r.json()
        if r.status_code != 200 or body.get("status") != "success":
            raise ServerError(f"prometheus {path} {params} -> {r.status_code}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns data.result (for a vector: [{'metric': {...}, 'value': [t, 'v']}])."""
        data = self._get("/api/v1/query", query=expr)
        result = data["result"]
        if data.get("resultType") in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def query_value(self, expr: str) -> float | None:
        """The single numeric value of an instant query, or None when the result is empty."""
        result = self.query(expr)
        if not result:
            return None
        return float(result[0]["value"][1])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) from /api/v1/alerts."""
        return list(self._get("/api/v1/alerts")["alerts"])

    def firing(self) -> set[str]:
        """Names of the alerts that are firing now."""
        return {a["labels"]["alertname"] for a in self.alerts() if a.get("state") == "firing"}

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their health and last error."""
        return list(self._get("/api/v1/targets")["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        """Loaded rule groups (to prove a rule file was picked up)."""
        return list(self._get("/api/v1/rules")["groups"])

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.25
    ) -> T:
        """Poll predicate (which may query this server) until it returns a truthy value.

        Scrapes and rule evaluations happen on the server's clock, so assertions must wait
        for them; exceptions inside predicate count as 'not yet'. Returns the truthy value.
        """
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except Exception as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"condition not met within {timeout:.0f}s (last error: {last!r})"
                )
            time.sleep(interval)


class PromTools:
    """What the prometheus_tools fixture hands out: binary paths plus the promtool helpers."""

    def __init__(self) -> None:
        self.prometheus = Path(tool("prometheus"))
        self.promtool = Path(tool("promtool"))

    check_rules = staticmethod(promtool_check_rules)
    test_rules = staticmethod(promtool_test_rules)
    check_config = staticmethod(promtool_check_config)
    check_metrics = staticmethod(promtool_check_metrics)
