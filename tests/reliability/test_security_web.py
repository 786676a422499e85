"""Nobody reads or acts through the web surfaces without the right credentials.

- /metrics behind basic auth: no path, spelling or malformed header gets data without the
  right user and password (only `/-/healthy`, which says "ok" and nothing else, is open).
- The dashboard as a running Streamlit server: before sign-in, none of its HTTP endpoints
  returns fleet data (the page content only ever travels after the login gate, in the
  session's websocket, which tests/unit/dashboard/test_app.py drives through AppTest).
- A viewer who forges the clicks a disabled button would send (AppTest clicks disabled
  buttons as a crafted client could) changes nothing: the role check is on the server.
Session expiry and sign-out are proven in tests/unit/dashboard/test_app.py
(test_idle_sessions_expire, test_sign_out); SSH host-key pinning in
tests/integration/drift/test_host_checks.py (test_ssh_unknown_host_key_is_refused).
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.unit.dashboard.seed import PASSWORDS, add_proposal, seed_store, write_fleet
from watchtower.metrics import MetricsApp, MetricsPage, MetricsServer
from watchtower.store import Store

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboards" / "app.py")
PAGES = ["Overview", "Target", "Compliance", "Drift", "Remediations", "Reports"]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_metrics_answer_nothing_without_the_password(tmp_path: Path) -> None:
    store = seed_store(f"sqlite:///{tmp_path / 'wt.db'}")
    server = MetricsServer(MetricsApp(MetricsPage(store), ("prom", "s3cret-metrics")),
                           "127.0.0.1:0").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        attempts = {
            "no header": {}, "wrong password": _basic("prom", "wrong"),
            "wrong user": _basic("admin", "s3cret-metrics"), "empty": _basic("", ""),
            "password only": {"Authorization": "Basic " + base64.b64encode(
                b"s3cret-metrics").decode()},
            "not base64": {"Authorization": "Basic %%%"}, "bearer": {
                "Authorization": "Bearer s3cret-metrics"},
            "prefix of the password": _basic("prom", "s3cret"),
        }
        seen = {}
        for path in ("/metrics", "/metrics/", "/METRICS", "/metrics?x=1", "//metrics",
                     "/metrics%00", "/", "/-/healthy", "/../metrics"):
            for what, headers in attempts.items():
                status, body = _get(base + path, headers)
                seen[(path, what)] = status
                assert b"watchtower_" not in body, (path, what, status)
        ok_status, ok_body = _get(base + "/metrics", _basic("prom", "s3cret-metrics"))
    finally:
        server.shutdown()
    open_paths = sorted({p for (p, _w), s in seen.items() if s == 200})
    print(f"\n/metrics: {len(seen)} unauthenticated or wrong attempts, statuses "
          f"{sorted(set(seen.values()))}; answering 200 without auth: {open_paths} "
          "(no metric in it)")
    assert ok_status == 200 and b"watchtower_" in ok_body
    assert open_paths == ["/-/healthy"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_running_dashboard_serves_no_data_before_sign_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wt.db'}"
    seed_store(url)
    fleet = write_fleet(tmp_path, url)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchtower.cli", "dashboard", "-c", str(fleet), "--address",
         "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _get(base + "/_stcore/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("dashboard did not start")
        # Names, summaries and evidence the seeded store holds (tests/unit/dashboard/seed.py).
        data = [b"bravo.test", b"social.alpha.test", b"dns.caa", b"nixos-system-web1",
                b"operator-pass-1", b"scrypt"]
        answered = {}
        for path in ("/", "/_stcore/health", "/_stcore/host-config", "/healthz",
                     "/_stcore/allowed-message-origins", "/_stcore/metrics",
                     "/_stcore/script-health-check", "/media/x", "/component/x/index.html",
                     "/_stcore/upload_file/x/y", "/app/static/fleet.toml", "/static/../wt.db",
                     "/?page=Overview", "/Remediations", "/api/v1/results"):
            status, body = _get(base + path)
            answered[path] = status
            leaked = [d for d in data if d in body]
            assert not leaked, (path, status, leaked)
    finally:
        proc.terminate()
        proc.wait(20)
    print(f"\ndashboard before sign-in: {len(answered)} endpoints, statuses "
          f"{answered}; fleet data in any body: none")


def test_a_viewer_forging_every_click_changes_nothing(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from watchtower.store import AcknowledgementRow, RemediationRow

    url = f"sqlite:///{tmp_path / 'wt.db'}"
    store: Store = seed_store(url)
    rid = add_proposal(store)
    monkeypatch.setenv("WATCHTOWER_FLEET", str(write_fleet(tmp_path, url)))

    def snapshot() -> list[tuple[str, str | None]]:
        with Session(store.engine) as s:
            rows = [(r.state, r.approved_by) for r in s.exec(select(RemediationRow)).all()]
            acks = [(a.check_id, None) for a in s.exec(select(AcknowledgementRow)).all()]
            return rows + acks

    before = snapshot()
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="login_name").input("vic")
    at.text_input(key="login_password").input(PASSWORDS["vic"])
    at.button[0].click().run()
    clicked = []
    for page in PAGES:
        at.sidebar.radio(key="nav").set_value(page).run()
        for i in range(len(at.button)):
            button = at.button[i]
            if button.key == "signout":
                continue
            clicked.append((page, button.label, button.disabled))
            for text in at.text_input:
                if text.key and text.key.startswith(("ack-note", "rem-")) and not text.disabled:
                    text.input("forged")
            # AppTest refuses to click a disabled widget, as a browser does; a crafted
            # websocket message is not a browser, so the trigger is set underneath.
            button._value = True
            at.run()
            if at.sidebar.radio and at.sidebar.radio(key="nav").value != page:
                at.sidebar.radio(key="nav").set_value(page).run()
    after = snapshot()
    from watchtower.dashboards.actions import audit_trail

    trail = [(a.user, a.action, a.ok) for a in audit_trail(store)]
    print(f"\nviewer forged {len(clicked)} clicks ({sum(d for *_x, d in clicked)} on disabled "
          f"buttons) over {len(PAGES)} pages; remediation rows before {before}, after {after}; "
          f"dashboard audit {trail[:6]}")
    assert after == before
    # The control: the same forged trigger from an operator's session does approve, so the
    # silence above is the role check's doing, not a click that never arrived.
    op = AppTest.from_file(APP, default_timeout=60).run()
    op.text_input(key="login_name").input("olga")
    op.text_input(key="login_password").input(PASSWORDS["olga"])
    op.button[0].click().run()
    op.sidebar.radio(key="nav").set_value("Remediations").run()
    op.button(key=f"rem-approve-{rid}")._value = True
    op.run()
    assert snapshot()[0] == ("approved", "olga")
    assert all(ok is False or action in ("login", "logout") for _a, action, ok in trail), trail
    assert rid
