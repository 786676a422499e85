"""Reports built from real lab sweeps, mailed through a real SMTP relay (STARTTLS + AUTH).

Every MIME part is parsed back and its figures are compared with the store they came from.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.integration.report.conftest import Relay, Seeded
from watchtower.report import (
    Period,
    build_report,
    deliver_due,
    list_reports,
    make_scheduled_report,
    send_report,
)
from watchtower.store import ResultRow, StateRow


def _parts(msg):  # type: ignore[no-untyped-def]
    out = {}
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename() or part.get_content_type()
        out[name.rsplit(".", 1)[-1] if part.get_filename() else name] = part
    return out


def _spec(seeded: Seeded, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in seeded.fleet.reports if r.name == name)


def test_scheduled_report_is_mailed_with_every_part_and_true_figures(
        seeded: Seeded, report_relay: Relay) -> None:
    before = len(report_relay.messages)
    row = make_scheduled_report(seeded.store, seeded.fleet, _spec(seeded, "acme-monthly"))
    assert len(report_relay.messages) == before + 1
    sent = next(r for r in list_reports(seeded.store) if r.id == row.id)
    assert sent.state == "sent" and sent.attempts == 1 and sent.sent_at is not None

    msg = report_relay.messages[-1]
    mail_from, rcpts = report_relay.envelopes[-1]
    assert mail_from == "reports@provider.example"
    assert sorted(rcpts) == ["audit@acme.example", "it@acme.example"]
    assert msg["Message-ID"] == sent.message_id
    assert "Compliance report for acme" in msg["Subject"]
    parts = _parts(msg)
    assert set(parts) >= {"text/plain", "text/html", "json", "pdf"}

    body = json.loads(parts["json"].get_content())
    assert body["schema_version"] == 3 and body["customer"] == "acme"
    # Figures against the store: every (check, target) of acme's targets, with its status.
    names = {t["name"] for s in body["sections"] for t in s["targets"]}
    with Session(seeded.store.engine) as s:
        states = {(st.check_id, st.target): st.status
                  for st in s.exec(select(StateRow)).all() if st.target in names}
        rows = [r for r in s.exec(select(ResultRow)).all() if r.target in names]
    reported = {(r["check"], r["target"]): r["status"]
                for s in body["sections"] for r in s["results"]}
    assert reported == states
    fails = sum(1 for v in states.values() if v == "fail")
    assert body["counts"]["fail"] == fails > 0
    ok = sum(1 for v in states.values() if v == "ok")
    warn = sum(1 for v in states.values() if v == "warn")
    assert body["score"] == round(100 * (ok + 0.5 * warn) / (ok + warn + fails))
    # Figures over time: one row per name (a zone, its mail domain and its endpoints are one),
    # exact probe counts from the stored streaks (two sweeps, all inside the period).
    of_target = {(t["name"], t["kind"]): row["name"] for row in body["rows"]
                 for t in row["targets"]}
    for row in body["rows"]:
        mine = [r for r in rows if of_target.get((r.target, r.target_kind)) == row["name"]]
        assert row["probe_count"] == sum(r.count for r in mine)
        assert row["probes"]["ok"] == sum(r.count for r in mine if r.status == "ok")
    alpha = next(row for row in body["rows"] if row["name"] == "alpha.test")
    assert {t["kind"] for t in alpha["targets"]} >= {"zone", "mail_domain"}
    social = next(row for row in body["rows"] if row["name"] == "social.alpha.test")
    # every check that applies to the Mastodon service, probed twice, all ok
    from watchtower.probe import registry

    target = next(t for t in seeded.fleet.targets() if t.name == "social.alpha.test")
    applicable = [c for c in registry.checks().values() if c.applies(target)]
    mastodon = [r for r in rows if r.target == "social.alpha.test"]
    assert sum(r.count for r in mastodon) == 2 * len(applicable)
    # two sweeps minutes apart are far less than `[reporting] min_span_hours`: no availability
    # is stated, and the report says how little data it had
    assert not body["coverage"]["enough"]
    assert body["coverage"]["text"].startswith("not enough data: ")
    assert all(row["availability_percent"] is None for row in body["rows"])
    assert any(a["answered"] for a in social["signals"])  # the answers are counted all the same
    # Failures carry the standard they violate, a hint and the evidence.
    ns = next(r for s in body["sections"] for r in s["results"]
              if r["check"] == "dns.ns.count" and r["target"] == "bravo.test")
    assert ns["status"] == "fail" and "RFC 2182 3.1" in ns["standards"]
    assert ns["hint"] and ns["evidence"]["nameservers"]

    html = parts["text/html"].get_content()
    text = parts["text/plain"].get_content()
    for needle in ("bravo.test", "dns.ns.count", "RFC 2182 3.1", f"{body['score']}%"):
        assert needle in html and needle in text
    assert "<script" not in html.lower() and "<style" not in html.lower()
    # globex's domain is nowhere a subject (the lab's shared MX certificate may name it in
    # evidence, which is what the probe saw).
    assert "charlie.test" not in json.dumps([s["name"] for s in body["sections"]]
                                            + [r["target"] for s in body["sections"]
                                               for r in s["results"]] + body["rows"])
    assert "photos.charlie.test" not in html + text

    from pypdf import PdfReader

    pdf = PdfReader(BytesIO(parts["pdf"].get_content()))
    assert len(pdf.pages) >= 2
    first = pdf.pages[0].extract_text()
    assert "Compliance report for acme" in first and f"{body['score']}%" in first


def test_customer_report_holds_only_that_customers_domains(seeded: Seeded) -> None:
    now = dt.datetime.now(dt.UTC)
    report = build_report(seeded.store, seeded.fleet, "globex", Period.last_days(7, now))
    names = {t for s in report.sections for t, _ in s.targets}
    assert {s.name for s in report.sections} == {"charlie.test"}
    assert all("charlie.test" in n for n in names)
    assert all(x.target in names for x in report.lines)
    everyone = build_report(seeded.store, seeded.fleet, None, Period.last_days(7, now))
    assert {s.name for s in everyone.sections if s.kind == "domain"} == {
        "alpha.test", "bravo.test", "charlie.test"}


def test_relay_failure_then_recovery_delivers_exactly_once(
        seeded: Seeded, report_relay: Relay) -> None:
    report_relay.fail_next = 1
    before = len(report_relay.messages)
    row = make_scheduled_report(seeded.store, seeded.fleet, _spec(seeded, "globex-weekly"))
    assert row.id is not None
    stored = next(r for r in list_reports(seeded.store) if r.id == row.id)
    assert stored.state == "pending" and stored.attempts == 1
    assert "451" in (stored.last_error or "")
    assert len(report_relay.messages) == before
    # Not due yet: the backoff holds it back.
    assert deliver_due(seeded.store, seeded.fleet) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)
    assert deliver_due(seeded.store, seeded.fleet, later) == 1
    assert deliver_due(seeded.store, seeded.fleet, later + dt.timedelta(hours=1)) == 0
    again = send_report(seeded.store, seeded.fleet, row.id)  # "send now" on a sent report
    assert again.state == "sent" and again.attempts == 2
    mine = [m for m in report_relay.messages[before:] if m["Message-ID"] == stored.message_id]
    assert len(mine) == 1
    parts = _parts(mine[0])
    assert "pdf" not in parts and "json" in parts  # this schedule's formats


def test_second_report_lists_changes_since_the_previous_one(seeded: Seeded) -> None:
    spec = _spec(seeded, "acme-monthly")
    first = make_scheduled_report(seeded.store, seeded.fleet, spec)
    second = make_scheduled_report(seeded.store, seeded.fleet, spec)
    body = json.loads(second.body_json)
    assert body["changes"]["baseline"]["kind"] == "report"
    assert body["changes"]["baseline"]["report_id"] == first.id
    assert body["changes"]["new_failures"] == [] and body["changes"]["fixed"] == []


def test_cli_writes_each_format_and_pdf_pages_render(seeded: Seeded, tmp_path: Path) -> None:
    from watchtower.cli import main

    for fmt in ("html", "json", "text", "pdf"):
        out = tmp_path / f"r.{fmt}"
        assert main(["report", "-c", str(seeded.fleet_path), "--customer", "acme",
                     "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 1000
    body = json.loads((tmp_path / "r.json").read_text())
    assert body["customer"] == "acme" and not body["coverage"]["adhoc_included"]
    assert main(["report", "-c", str(seeded.fleet_path), "--customer", "acme", "--format",
                 "json", "--include-adhoc", "--out", str(tmp_path / "all.json")]) == 0
    assert json.loads((tmp_path / "all.json").read_text())["coverage"]["adhoc_included"]
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) missing")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "r.pdf"),
                    str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2 and all(p.stat().st_size > 2000 for p in pages)
    assert main(["report", "-c", str(seeded.fleet_path), "--name", "acme-monthly",
                 "--send"]) == 0
    assert main(["report", "-c", str(seeded.fleet_path), "--list"]) == 0



def test_refused_login_marks_failed_without_leaking_the_password(
        seeded: Seeded, report_relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.report.conftest import SMTP_PASSWORD

    spec = _spec(seeded, "globex-weekly")
    monkeypatch.setenv("WT_REPORT_SMTP_PASSWORD", "wrong-password-123")
    before = len(report_relay.messages)
    row = make_scheduled_report(seeded.store, seeded.fleet, spec)
    assert row.id is not None
    failed = next(r for r in list_reports(seeded.store, state="failed") if r.id == row.id)
    assert "535" in (failed.last_error or "")
    assert "wrong-password-123" not in (failed.last_error or "")
    assert deliver_due(seeded.store, seeded.fleet,
                       dt.datetime.now(dt.UTC) + dt.timedelta(days=1)) == 0  # not retried
    monkeypatch.setenv("WT_REPORT_SMTP_PASSWORD", SMTP_PASSWORD)
    again = send_report(seeded.store, seeded.fleet, row.id)  # "send now" after the fix
    assert again.state == "sent" and again.attempts == 2
    assert len(report_relay.messages) == before + 1


def test_report_scheduler_has_a_job_per_report_and_a_retry_job(seeded: Seeded) -> None:
    from watchtower.report import ReportScheduler

    sched = ReportScheduler(seeded.store, seeded.fleet, retry_seconds=3600)
    sched.start()
    try:
        assert sched.jobs() == ["report:acme-monthly", "report:globex-weekly",
                                "reports:deliver"]
        fewer = seeded.fleet.model_copy(update={"reports": seeded.fleet.reports[:1]})
        sched.reconfigure(fewer)
        assert sched.jobs() == ["report:acme-monthly", "reports:deliver"]
    finally:
        sched.shutdown()
