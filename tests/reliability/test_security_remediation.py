"""Nobody makes watchtower change a host outside its policy, at the level of real processes.

tests/unit/remediation/test_engine.py proves the engine's rules in one process (policy levels,
approval, compare-and-set from 6 threads, locks, rate limits, recovery). Here the same rules are
attacked the way an operator's machine would meet them: `watchtower run` reloading a narrower
policy by SIGHUP while an approved remediation waits, approvals forged straight into the
database, two `remediate apply` processes racing, two `watchtower run` daemons on one database,
and unit names from a host's own output carrying shell syntax into the plan's argv, run through
the local transport and over real OpenSSH (the `sshd` fixture).

The remediation is the real `systemd.restart`; `systemctl` is a stand-in script (there is no
systemd here) that lists the units in failed.json as failed and appends every restart's argv to
restarts.log: a line in that log is a change made to the host.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.net.helpers import tcp_server
from watchtower.cli import main

WT = [sys.executable, "-m", "watchtower.cli"]
ROOT = Path(__file__).resolve().parents[2]

SYSTEMCTL = '''#!{python}
"""Stand-in for systemctl: failed.json's units are failed; each restart is logged as JSON."""
import json, pathlib, sys, time
here = pathlib.Path(__file__).resolve().parent
args = sys.argv[1:]
if args and args[0] == "list-units":
    for unit in json.loads((here / "failed.json").read_text()):
        print(unit + " loaded failed failed test unit")
elif args and args[0] == "restart":
    delay = here / "restart-delay"
    if delay.exists():
        time.sleep(float(delay.read_text()))
    with open(here / "restarts.log", "a") as fh:
        fh.write(json.dumps(args) + "\\n")
'''


class Box:
    """A host (the stand-in systemctl), a fleet file and a database in one directory."""

    def __init__(self, d: Path, failed: list[str] | None = None) -> None:
        self.d = d
        d.chmod(0o755)
        script = d / "systemctl"
        script.write_text(SYSTEMCTL.format(python=sys.executable))
        script.chmod(0o755)
        (d / "failed.json").write_text(json.dumps(failed or ["mastodon-web.service"]))
        self.fleet = d / "fleet.toml"
        self.db = d / "wt.db"

    def write(self, policy: str, *, host: str = "", extra: str = "") -> None:
        self.fleet.write_text(
            f'[store]\ndatabase = "sqlite:///{self.db}"\n[metrics]\nlisten = "127.0.0.1:0"\n'
            f'[probe]\nnameservers = ["127.0.0.1:9"]\n[daemon]\nlog_level = "debug"\n\n'
            f'[remediation]\nsettle_seconds = 0\n'
            f'policies = {{ "systemd.restart" = "{policy}" }}\n\n'
            f'[checks."*"]\ninterval = 3\ntimeout = 4\n\n'
            f'[[hosts]]\nname = "web1"\nsystemctl = "{self.d / "systemctl"}"\n'
            f'units = ["mastodon-*"]\ndisk_paths = ["/"]\n{host}\n{extra}')

    def wt(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """`watchtower ARGS` in this process (the CLI's own main; the attacks that need
        separate processes start them with Popen): a second of interpreter start-up saved
        per call keeps the file inside the CI budget."""
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(list(args))
        out = subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())
        if check:
            assert out.returncode in (0, 1), out.stderr[-2000:]
        return out

    def restarts(self) -> list[list[str]]:
        log = self.d / "restarts.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def rows(self) -> list[dict[str, Any]]:
        con = sqlite3.connect(self.db)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM remediation ORDER BY id")]
        finally:
            con.close()

    def sql(self, statement: str, *params: Any) -> None:
        con = sqlite3.connect(self.db)
        try:
            con.execute(statement, params)
            con.commit()
        finally:
            con.close()

    def planned(self, policy: str = "approve") -> int:
        """Store the failing check and plan its fix under `policy`; the proposal's id."""
        self.write(policy)
        self.wt("check", "-c", str(self.fleet), "--only", "host.units", check=True)
        out = self.wt("remediate", "plan", "-c", str(self.fleet), check=True)
        assert "restart mastodon-web.service" in out.stdout, out.stdout + out.stderr
        return int(self.rows()[-1]["id"])


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _daemon(box: Box, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*WT, "run", "-c", str(box.fleet)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _hang(conn: Any) -> None:
    time.sleep(30)


def test_sighup_to_a_narrower_policy_stops_a_pending_auto_apply(tmp_path: Path) -> None:
    box = Box(tmp_path)
    rid = box.planned("approve")
    assert box.wt("remediate", "approve", str(rid), "-c", str(box.fleet), "--user",
                  "alice").returncode == 0
    log = tmp_path / "run.log"
    with tcp_server(_hang) as port:
        # A hung endpoint keeps the first sweep busy for its 4 s timeout: the reload lands
        # while the approved remediation waits for the end of that sweep.
        slow = f'[[endpoints]]\nname = "slow"\nurl = "https://127.0.0.1:{port}/"\n'
        box.write("auto", extra=slow)
        proc = _daemon(box, log)
        try:
            assert _wait(lambda: "running; metrics at" in log.read_text(), 30), log.read_text()
            box.write("dry-run", extra=slow)
            started = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            assert _wait(lambda: "reloaded" in log.read_text(), 10), log.read_text()[-3000:]
            reload_s = time.monotonic() - started
            # The interrupted sweep and one more end, each followed by run_auto, under the
            # narrowed policy.
            before = _sweeps_done(box)
            assert _wait(lambda: _sweeps_done(box) >= before + 2, 30), log.read_text()[-3000:]
            applied_under_dry_run = box.restarts()
            state_after = box.rows()[0]["state"]
            # The control: the same daemon applies once the policy is auto again, so the
            # silence above was the policy's doing and not a test that cannot see an apply.
            box.write("auto", extra=slow)
            proc.send_signal(signal.SIGHUP)
            applied_later = _wait(lambda: bool(box.restarts()), 30)
        finally:
            _stop(proc)
    print(f"\nreload by SIGHUP took effect after {reload_s:.2f} s; restarts under dry-run: "
          f"{len(applied_under_dry_run)}; after switching back to auto: {len(box.restarts())}")
    assert applied_under_dry_run == []
    assert state_after == "approved"
    assert applied_later, log.read_text()[-3000:]


def _sweeps_done(box: Box) -> int:
    con = sqlite3.connect(box.db)
    try:
        return int(con.execute("SELECT count(*) FROM sweep WHERE state = 'done'").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


FORGERIES = [  # (policy in the fleet file, approved_by written into the row, row's policy)
    ("dry-run", "mallory", "approve"),   # approved in the database, but the file says dry-run
    ("dry-run", "mallory", "auto"),      # ... even with the row claiming policy auto
    ("approve", None, "approve"),        # approved without an approver
    ("approve", "auto", "approve"),      # "approved" by the automaton under policy approve
    ("off", "mallory", "auto"),
]


def test_forged_approvals_are_not_applied(tmp_path: Path) -> None:
    box = Box(tmp_path)
    rid = box.planned("approve")
    for fleet_policy, approved_by, row_policy in FORGERIES:
        box.sql("UPDATE remediation SET state = 'approved', approved_by = ?, policy = ? "
                "WHERE id = ?", approved_by, row_policy, rid)
        box.write(fleet_policy)
        out = box.wt("remediate", "apply", str(rid), "-c", str(box.fleet), "--user", "mallory")
        print(f"\nforged approval ({fleet_policy=}, {approved_by=}, {row_policy=}): exit "
              f"{out.returncode}: {out.stderr.strip()}")
        assert out.returncode == 1 and "refused" in out.stderr
        assert box.restarts() == []
        assert box.rows()[0]["state"] == "approved"


def test_forged_plan_under_policy_auto_is_not_run(tmp_path: Path) -> None:
    """A row written straight into the database with a plan watchtower never made (any argv)
    must not run, even where policy auto would apply a real one on its own."""
    box = Box(tmp_path)
    rid = box.planned("approve")
    plan = json.loads(box.rows()[0]["plan"])
    canary = tmp_path / "forged-ran"
    plan["steps"][0]["argv"] = [str(tmp_path / "systemctl"), "restart", "--", "forged.service"]
    plan["steps"].append({**plan["steps"][0], "argv": ["touch", str(canary)]})
    box.sql("UPDATE remediation SET state = 'approved', approved_by = 'mallory', plan = ? "
            "WHERE id = ?", json.dumps(plan), rid)
    box.write("auto")
    out = box.wt("remediate", "apply", str(rid), "-c", str(box.fleet), "--user", "mallory")
    print(f"\nforged plan: exit {out.returncode}: {out.stdout.strip()} {out.stderr.strip()}")
    assert not canary.exists()
    assert box.restarts() == []


def test_two_apply_processes_change_the_host_once(tmp_path: Path) -> None:
    box = Box(tmp_path)
    rid = box.planned("approve")
    assert box.wt("remediate", "approve", str(rid), "-c", str(box.fleet), "--user",
                  "alice").returncode == 0
    (tmp_path / "restart-delay").write_text("1.5")
    procs = [subprocess.Popen([*WT, "remediate", "apply", str(rid), "-c", str(box.fleet),
                               "--user", who], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT) for who in ("alice", "bob", "carol")]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    refused = sum("refused" in err for _out, err in outs)
    print(f"\nthree concurrent `remediate apply`: exit codes {codes}, {refused} refused, "
          f"{len(box.restarts())} restart(s) on the host")
    assert len(box.restarts()) == 1
    assert refused == 2


def test_two_daemons_on_one_database_apply_once(tmp_path: Path) -> None:
    box = Box(tmp_path)
    rid = box.planned("approve")
    assert box.wt("remediate", "approve", str(rid), "-c", str(box.fleet), "--user",
                  "alice").returncode == 0
    (tmp_path / "restart-delay").write_text("1.0")
    box.write("auto")
    before = _sweeps_done(box)
    procs = [_daemon(box, tmp_path / f"run{i}.log") for i in range(2)]
    try:
        assert _wait(lambda: bool(box.restarts()), 40)
        assert _wait(lambda: _sweeps_done(box) >= before + 3, 40)  # both swept after it
    finally:
        for p in procs:
            _stop(p)
    audits = _audit_actions(box, rid)
    print(f"\ntwo `watchtower run` on one database: {len(box.restarts())} restart(s); audit "
          f"{audits}")
    assert len(box.restarts()) == 1
    assert audits.count("undo-recorded") == 1


def _audit_actions(box: Box, rid: int) -> list[str]:
    con = sqlite3.connect(box.db)
    try:
        return [r[0] for r in con.execute(
            "SELECT action FROM remediation_audit WHERE remediation_id = ? ORDER BY id", (rid,))]
    finally:
        con.close()


NASTY_UNITS = ["mastodon-$(touch${IFS}/tmp/wt-pwned).service", "mastodon-;touch${IFS}x.service",
               "mastodon-`id`.service", "mastodon-'\"quote.service", "mastodon-a|b&c>d.service"]


@pytest.mark.parametrize("via", ["local", "ssh"])
def test_unit_names_from_the_host_cannot_inject(tmp_path: Path, via: str,
                                                request: pytest.FixtureRequest) -> None:
    """Unit names come from the host's own `systemctl` output: they reach the restart argv
    unchanged, behind `--`, and no shell on either side ever reads them as syntax."""
    box = Box(tmp_path, failed=[*NASTY_UNITS, "-rf.service"])
    host = ""
    if via == "ssh":
        sshd = request.getfixturevalue("sshd")
        host = (f'ssh = "{sshd.user}@127.0.0.1:{sshd.port}"\n'
                f'known_hosts = "{sshd.known_hosts}"\n'
                f'ssh_key = {{ "$file" = "{sshd.client_key}" }}\n')
    box.write("approve", host=host)
    box.wt("check", "-c", str(box.fleet), "--only", "host.units", check=True)
    out = box.wt("remediate", "plan", "-c", str(box.fleet), check=True)
    rid = int(box.rows()[-1]["id"])
    assert box.wt("remediate", "approve", str(rid), "-c", str(box.fleet), "--user",
                  "alice").returncode == 0
    box.wt("remediate", "apply", str(rid), "-c", str(box.fleet), "--user", "alice")
    got = box.restarts()
    print(f"\n{via}: {len(got)} restarts, argv received literally: "
          f"{[a[2:] for a in got][:2]} ...")
    assert sorted(a[-1] for a in got) == sorted(NASTY_UNITS), out.stdout
    assert all(a[:2] == ["restart", "--"] for a in got)
    assert not Path("/tmp/wt-pwned").exists() and not (ROOT / "x").exists()
    assert "-rf.service" not in json.dumps(got)  # not declared (mastodon-*): never restarted
    assert os.path.exists(box.d / "restarts.log")
