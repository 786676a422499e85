"""Secrets (`$env` / `$file`) never appear in logs, evidence, reports, the dashboard, or errors.

Every secret field of the fleet file is set to a distinctive value: the Garage admin token and
S3 keys, an SSH private key (over the real `sshd` fixture), the mail probe password, the DNS API
key, the /metrics password, the alert mail password and an apprise URL with a token. Then the
whole tool runs the way an operator runs it: a full lab sweep (`watchtower check --format json`),
`watchtower run` at debug log level for several sweeps (alerts fire at once, so both channels
try, and fail, to deliver), a scrape of /metrics with and without the password, `remediate
plan/list/history`, reports in html/json/text, and every dashboard page after signing in
(Streamlit AppTest). Every byte that came out is searched for every secret value, including
the base64 forms a header would carry: stdout, stderr, log files, the SQLite database file
and its WAL, the report files and the dashboard's rendered elements. Expected hits: 0.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from watchtower.dashboards.auth import add_user

WT = [sys.executable, "-m", "watchtower.cli"]
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboards" / "app.py")
PAGES = ["Overview", "Target", "Compliance", "Drift", "Remediations", "Reports"]
DASH_PASSWORD = "dashboard-pass-4711"


def _fleet(lab: Any, sshd: Any, d: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """The lab's fleet with every secret field set; (path, environment, secret values)."""
    doc = tomllib.loads(lab.fleet_path.read_text())
    garage_token = (lab.dir / "garage-admin-token").read_text().strip()
    env = {
        "WT_S3_ACCESS": "WTAKIDSECRET7Q2Z",
        "WT_S3_SECRET": "wt-s3-secret-key-8c41f0",
        "WT_SSH_KEY": Path(sshd.client_key).read_text(),
        "WT_DNS_API_KEY": "wt-pdns-api-key-5e2b77",
        "WT_METRICS_PASSWORD": "wt-metrics-pass-91ad03",
        "WT_MAIL_PASSWORD": "wt-alert-smtp-pass-3f6c1e",
        "WT_APPRISE_URL": "json://127.0.0.1:9/hook?token=wt-apprise-token-0b9d4a",
        "WT_RSPAMD_PASSWORD": "wt-rspamd-controller-pass-4d7e21",
    }
    probe_file = d / "secrets" / "mail-probe-password"
    probe_file.parent.mkdir()
    probe_file.write_text("wt-mail-probe-pass-62e8b5\n")
    doc["store"]["database"] = f"sqlite:///{d / 'wt.db'}"
    doc["metrics"] = {"listen": "127.0.0.1:0",
                      "auth": {"username": "prom", "password": {"$env": "WT_METRICS_PASSWORD"}}}
    doc["daemon"] = {"log_level": "debug"}
    garage = next(s for s in doc["services"] if s["kind"] == "garage")
    garage.update(s3_endpoint=garage["base_url"], s3_bucket="wt-canary",
                  s3_access_key={"$env": "WT_S3_ACCESS"}, s3_secret_key={"$env": "WT_S3_SECRET"})
    zone = doc["zones"][0]["name"]
    doc["hosts"] = [*doc.get("hosts", []),  # the lab's own: its mail host runs on it
                    {"name": "web1", "ssh": f"{sshd.user}@127.0.0.1:{sshd.port}",
                     "known_hosts": str(sshd.known_hosts), "ssh_key": {"$env": "WT_SSH_KEY"},
                     "units": ["mastodon-*"], "connect_timeout": 5}]
    for mail_host in doc.get("mail_hosts", []):
        mail_host.setdefault("probe_user", "probe")
        mail_host["probe_password"] = {"$file": str(probe_file)}
        # mail.spam-filter asks a controller (nothing listens there) with its password
        mail_host["rspamd_controller"] = "http://127.0.0.1:9"
        mail_host["rspamd_password"] = {"$env": "WT_RSPAMD_PASSWORD"}
    assert doc.get("mail_hosts"), "the lab declares its mail hosts"
    doc["dns_apis"] = [{"name": "pdns", "url": "http://127.0.0.1:9/", "zones": [zone],
                        "api_key": {"$env": "WT_DNS_API_KEY"}}]
    doc["notifications"] = {
        "email": [{"name": "ops", "host": "127.0.0.1", "port": 9, "security": "none",
                   "username": "alerts", "password": {"$env": "WT_MAIL_PASSWORD"},
                   "sender": "watchtower@example.test", "to": ["ops@example.test"]}],
        "apprise": [{"name": "hook", "url": {"$env": "WT_APPRISE_URL"}}],
        "retry_initial": 1,
    }
    doc["checks"] = {"*": {"interval": 3, "timeout": 8, "failure_threshold": 1}}
    doc["remediation"] = {"default_policy": "approve", "settle_seconds": 0}
    users = d / "users.toml"
    add_user(users, "olga", "operator", DASH_PASSWORD)
    doc["dashboard"] = {"users_file": str(users)}
    path = d / "fleet.toml"
    path.write_text(tomli_w.dumps(doc))

    values = {k: v for k, v in env.items() if k != "WT_SSH_KEY"}
    values["garage admin token"] = garage_token
    values["mail probe password"] = "wt-mail-probe-pass-62e8b5"
    values["apprise token"] = "wt-apprise-token-0b9d4a"
    # The SSH key by its base64 body lines (a log would hardly quote the PEM armour).
    for i, line in enumerate(env["WT_SSH_KEY"].splitlines()):
        if len(line) >= 40 and not line.startswith("-----"):
            values[f"ssh key line {i}"] = line
    values["metrics basic auth"] = base64.b64encode(
        b"prom:" + env["WT_METRICS_PASSWORD"].encode()).decode()
    values["mail AUTH PLAIN"] = base64.b64encode(
        b"\0alerts\0" + env["WT_MAIL_PASSWORD"].encode()).decode()
    for user in {m.get("probe_user") for m in doc["mail_hosts"]}:
        values[f"probe AUTH PLAIN {user}"] = base64.b64encode(
            f"\0{user}\0wt-mail-probe-pass-62e8b5".encode()).decode()
    return path, env, values


def _run(args: list[str], env: dict[str, str], out: Path) -> int:
    proc = subprocess.run([*WT, *args], capture_output=True, env=env, cwd=ROOT, timeout=300,
                          check=False)
    out.write_bytes(proc.stdout + b"\n--- stderr ---\n" + proc.stderr)
    return proc.returncode


def _scrape(port: int, auth: str | None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _dashboard_text(fleet: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    from streamlit.testing.v1 import AppTest

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WATCHTOWER_FLEET", str(fleet))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="login_name").input("olga")
    at.text_input(key="login_password").input(DASH_PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    dumps = []
    for page in PAGES:
        at.sidebar.radio(key="nav").set_value(page).run()
        assert not at.exception, [e.message for e in at.exception]
        # Every element the page rendered, as its protobuf text: tables, code, captions...
        dumps.append(str(at._tree))
        for frame in at.dataframe:
            dumps.append(frame.value.to_csv())
    return "\n".join(dumps)


def test_no_secret_leaves_in_any_output(lab: Any, sshd: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fleet, secret_env, secrets = _fleet(lab, sshd, tmp_path)
    env = {**os.environ, **secret_env}
    outputs = tmp_path / "out"
    outputs.mkdir()
    started = time.monotonic()

    _run(["check", "-c", str(fleet), "--format", "json"], env, outputs / "check.json.txt")
    log = outputs / "run.log"
    with log.open("wb") as fh:
        daemon = subprocess.Popen([*WT, "run", "-c", str(fleet)], stdout=fh,
                                  stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "metrics at http" not in log.read_text():
            time.sleep(0.2)
        found = re.search(r"metrics at http://127\.0\.0\.1:(\d+)", log.read_text())
        assert found, log.read_text()[-2000:]
        port = int(found[1])
        time.sleep(8)  # two or three sweeps; alerts fire and both channels fail to deliver
        unauth = _scrape(port, None)
        wrong = _scrape(port, "prom:not-the-password")
        good = _scrape(port, "prom:" + secret_env["WT_METRICS_PASSWORD"])
        (outputs / "metrics.txt").write_bytes(good[1])
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    assert unauth[0] == 401 and wrong[0] == 401 and good[0] == 200
    assert b"watchtower_" in good[1]

    _run(["remediate", "plan", "-c", str(fleet)], env, outputs / "remediate-plan")
    later = {"remediate-list": ["remediate", "list", "-c", str(fleet), "--all"],
             "remediate-history": ["remediate", "history", "-c", str(fleet)]}
    for fmt in ("html", "json", "text"):
        later[f"report-{fmt}.out"] = ["report", "-c", str(fleet), "--format", fmt, "--out",
                                      str(outputs / f"report.{fmt}")]
    procs = {name: subprocess.Popen([*WT, *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, cwd=ROOT)
             for name, args in later.items()}  # read-only commands: all at once
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        (outputs / name).write_bytes(stdout + b"\n--- stderr ---\n" + stderr)
    (outputs / "dashboard.txt").write_text(_dashboard_text(fleet, monkeypatch, secret_env))
    took = time.monotonic() - started

    secret_sources = {tmp_path / "secrets" / "mail-probe-password", tmp_path / "users.toml"}
    searched: list[Path] = [p for p in tmp_path.rglob("*")
                            if p.is_file() and p not in secret_sources]
    hits = []
    total = 0
    for path in searched:
        data = path.read_bytes()
        total += len(data)
        for what, value in secrets.items():
            if value.encode() in data:
                hits.append((what, str(path.relative_to(tmp_path))))
    names = sorted(p.name for p in searched)
    print(f"\nsecrets: {len(secrets)} values searched in {len(searched)} files, "
          f"{total / 2**20:.1f} MiB ({', '.join(names[:14])}...) after {took:.0f} s of use; "
          f"hits: {len(hits)}")
    assert any(p.name.startswith("wt.db") for p in searched)
    assert (outputs / "report.html").exists() and (outputs / "check.json.txt").stat().st_size
    assert "alert" in log.read_text().lower()  # the channels were really tried
    assert hits == []
