"""`watchtower dashboard`, `watchtower dashboard-user` and the `[dashboard]` config section."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import tomli_w
from watchtower.dashboards.auth import Role, authenticate, load_users

from watchtower.cli import dashboard, main
from watchtower.config import load_fleet
from watchtower.daemon import DaemonError
from watchtower.errors import ConfigError


def test_dashboard_argv_runs_the_packaged_app(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text("")
    argv = dashboard.dashboard_argv(str(fleet), "127.0.0.2", 8600)
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(argv[4]).name == "app.py" and Path(argv[4]).is_file()
    assert argv[argv.index("--server.address") + 1] == "127.0.0.2"
    assert argv[argv.index("--server.port") + 1] == "8600"
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"
    assert argv[-3:] == ["--", "-c", str(fleet.resolve())]


def test_dashboard_argv_passes_the_oidc_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps({"dashboard": {"oidc": {
        "secrets_file": "st-secrets.toml", "operators": ["a@b.example"]}}}))
    fleet = load_fleet(path)
    argv = dashboard.dashboard_argv(str(path), "127.0.0.1", 8501, fleet)
    assert argv[argv.index("--secrets.files") + 1] == str(tmp_path / "st-secrets.toml")


def test_dashboard_section_resolves_paths_and_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps({"dashboard": {"users_file": "u.toml",
                                                 "session_minutes": 15}}))
    fleet = load_fleet(path)
    assert fleet.dashboard.users_file == str(tmp_path / "u.toml")
    assert fleet.dashboard.session_minutes == 15 and fleet.dashboard.oidc is None
    path.write_text(tomli_w.dumps({"dashboard": {"users_file": "u.toml", "password": "x"}}))
    with pytest.raises(ConfigError, match="password"):
        load_fleet(path)
    path.write_text(tomli_w.dumps({"dashboard": {"session_minutes": 0}}))
    with pytest.raises(ConfigError, match="session_minutes"):
        load_fleet(path)


def test_dashboard_user_add_reads_the_password_from_stdin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "users.toml"
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-pass\n"))
    assert main(["dashboard-user", "add", "olga", "--role", "operator",
                     "--users-file", str(users)]) == 0
    out = capsys.readouterr().out
    assert "olga (operator)" in out and "s3cret" not in out
    entry = load_users(users)["olga"]
    assert entry.role is Role.OPERATOR
    assert authenticate(load_users(users), "olga", "s3cret-pass") is not None
    monkeypatch.setattr(sys, "stdin", io.StringIO("another-pass\n"))
    assert main(["dashboard-user", "add", "olga", "--users-file", str(users)]) == 2
    assert "exists" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["dashboard-user", "add", "vic", "--users-file", str(users)]) == 2
    assert main(["dashboard-user", "list", "--users-file", str(users)]) == 0
    assert "olga" in capsys.readouterr().out


def test_dashboard_user_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    users = tmp_path / "users.toml"
    for name in ("olga", "vic"):
        monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-pass\n"))
        assert main(["dashboard-user", "add", name, "--users-file", str(users)]) == 0
    capsys.readouterr()
    assert main(["dashboard-user", "remove", "vic", "--users-file", str(users)]) == 0
    assert capsys.readouterr().out.startswith(f"vic (viewer) removed from {users}")
    assert set(load_users(users)) == {"olga"}
    assert users.stat().st_mode & 0o777 == 0o600
    assert main(["dashboard-user", "remove", "vic", "--users-file", str(users)]) == 2
    assert capsys.readouterr().err.strip() == f"error: no user 'vic' in {users} (users: olga)"
    assert main(["dashboard-user", "remove", "--users-file", str(users)]) == 2
    assert main(["dashboard-user", "remove", "olga", "--users-file", str(users)]) == 0
    capsys.readouterr()
    assert main(["dashboard-user", "list", "--users-file", str(users)]) == 0
    assert capsys.readouterr().out.strip() == f"no users in {users}"


class _Health(BaseHTTPRequestHandler):
    """Streamlit's health check as it behaves while starting: 503 twice, then 200."""

    asked: list[str] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        self.send_response(200 if len(self.asked) > 2 else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_wait_until_serving_waits_for_the_health_check() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert dashboard.wait_until_serving(url, sleeper, interval=0.01)
        assert _Health.asked == ["/_stcore/health"] * 3
    finally:
        server.shutdown()
        server.server_close()
        sleeper.kill()
        sleeper.wait()


def test_wait_until_serving_gives_up_when_the_dashboard_exits() -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    exits = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(DaemonError, match="exited with status 3 before it answered"):
        dashboard.wait_until_serving(url, exits, interval=0.01)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not dashboard.wait_until_serving(url, sleeper, timeout=0.2, interval=0.01)
    finally:
        sleeper.kill()
        sleeper.wait()
