"""A small real store for the dashboard tests: results recorded through `Store.record`, a
remediation proposal, a fleet file with a `[dashboard]` section and a users file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import tomli_w
from sqlmodel import Session
from watchtower.dashboards.auth import add_user

from watchtower.model import Result, Status, Target, TargetKind
from watchtower.remediation.api import Plan, Step
from watchtower.store import AuditRow, RemediationRow, Store

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
PASSWORDS = {"olga": "operator-pass-1", "vic": "viewer-pass-1"}

CERT = {"host": "social.alpha.test", "port": 443, "verified": True,
        "leaf": {"names": ["social.alpha.test"], "issuer": "CN=Lab CA",
                 "not_before": "2026-10-01T00:00:00+00:00",
                 "not_after": "2026-11-30T00:00:00+00:00"}}
VERSION = {"service": "social", "kind": "mastodon", "declared": "4.3.0", "running": "4.3.0",
           "observed_at": "2026-11-20T00:00:00+00:00",
           "upstream": {"newest": "4.3.2", "newest_date": "2026-10-03", "history": True,
                        "newer": [{"version": "4.3.2", "date": "2026-10-03"},
                                  {"version": "4.3.1", "date": "2026-09-21"}]}}
GENERATION = {"host": "web1", "expected": "/nix/store/b-nixos-system-web1-24.05.2",
              "current": "/nix/store/a-nixos-system-web1-24.05.1",
              "generations": [{"number": 1, "current": True, "path": "a"},
                              {"number": 2, "current": False, "path": "b"}],
              "closure_diff": {"added": [{"name": "pixelfed", "version": "0.12.4"}],
                               "removed": [],
                               "changed": [{"name": "mastodon", "old": "4.3.1", "new": "4.3.2"}]}}


def result(check: str, family: str, kind: TargetKind, name: str, status: Status, summary: str,
           at: dt.datetime, evidence: dict | None = None, tags: tuple[str, ...] = (),
           ms: float = 12.0) -> Result:
    return Result(check, family, Target(kind, name, None, tags), status, summary,
                  evidence or {"probe": summary}, ms, at)


def first_sweep(at: dt.datetime) -> list[Result]:
    z, m, e = TargetKind.ZONE, TargetKind.MAIL_DOMAIN, TargetKind.ENDPOINT
    return [
        result("dns.ns.count", "dns", z, "alpha.test", Status.OK, "2 NS", at, tags=("gold",)),
        result("dns.caa", "dns", z, "alpha.test", Status.OK, "CAA ok", at, tags=("gold",)),
        result("dns.ns.count", "dns", z, "bravo.test", Status.FAIL, "1 name server", at),
        result("dns.caa", "dns", z, "bravo.test", Status.WARN, "no CAA", at),
        result("mail.mx", "mail", m, "bravo.test", Status.ERROR, "timeout", at),
        result("mail.spf.record", "mail", m, "bravo.test", Status.OK, "spf ok", at),
        result("web.tls.certificate", "web", e, "social.alpha.test:8443", Status.OK,
               "valid until 2026-11-30", at, CERT, tags=("gold",)),
        result("drift.version", "drift", TargetKind.MASTODON, "social.alpha.test", Status.WARN,
               "declared 4.3.0 is 2 releases behind 4.3.2", at, VERSION),
        result("drift.generation", "drift", TargetKind.HOST, "web1", Status.FAIL,
               "web1 runs an older generation", at, GENERATION),
    ]


def seed_store(url: str) -> Store:
    """Two sweeps a day apart: bravo.test's CAA goes warn -> fail, alpha's NS ok -> fail."""
    store = Store(url)
    day1 = NOW - dt.timedelta(days=2)
    store.record(first_sweep(day1))
    second = first_sweep(NOW - dt.timedelta(hours=2))
    second[3] = result("dns.caa", "dns", TargetKind.ZONE, "bravo.test", Status.FAIL,
                       "CAA syntax error", NOW - dt.timedelta(hours=2))
    second[0] = result("dns.ns.count", "dns", TargetKind.ZONE, "alpha.test", Status.FAIL,
                       "1 name server", NOW - dt.timedelta(hours=2), tags=("gold",), ms=40.0)
    store.record(second)
    return store


def add_proposal(store: Store, remediation: str = "dns.records", target: str = "bravo.test",
                 state: str = "awaiting_approval") -> int:
    plan = Plan(remediation=remediation, target=target, host="ns1", summary="publish CAA",
                diff='+ bravo.test. CAA 0 issue "lab.watchtower.test"',
                steps=[Step("add CAA", "http", method="PATCH",
                            url="http://127.0.0.1:1/api/v1/servers/localhost/zones/bravo.test.",
                            body={"rrsets": []})],
                undo=[Step("remove CAA", "http", method="PATCH", url="http://127.0.0.1:1/x")],
                verify=["dns.caa"])
    with Session(store.engine) as s:
        row = RemediationRow(remediation=remediation, target=target, host="ns1",
                             trigger_checks=json.dumps(["dns.caa"]), policy="approve",
                             state=state, summary=plan.summary, plan=plan.to_json(),
                             created_at=NOW, updated_at=NOW)
        s.add(row)
        s.commit()
        s.refresh(row)
        assert row.id is not None
        s.add(AuditRow(remediation_id=row.id, at=NOW, actor="auto", action="planned",
                       detail=plan.diff))
        s.commit()
        return row.id


def write_fleet(directory: Path, database: str, *, oidc: bool = False,
                session_minutes: float = 30, extra: dict | None = None) -> Path:
    users = directory / "users.toml"
    if not users.exists():
        add_user(users, "olga", "operator", PASSWORDS["olga"])
        add_user(users, "vic", "viewer", PASSWORDS["vic"])
    doc: dict = {"store": {"database": database},
                 "remediation": {"policies": {"dns.records": "approve"}},
                 "dashboard": {"users_file": "users.toml", "session_minutes": session_minutes}}
    if oidc:
        doc["dashboard"]["oidc"] = {"secrets_file": "streamlit-secrets.toml",
                                    "operators": ["boss@example.org"]}
    doc.update(extra or {})
    path = directory / "fleet.toml"
    path.write_text(tomli_w.dumps(doc))
    return path
