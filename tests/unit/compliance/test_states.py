"""Framework sections of a report: each internet.nl test's state per domain, and the
"pas toe of leg uit" standards, from the checks' stored verdicts and criteria."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from watchtower.compliance import states
from watchtower.compliance.frameworks import InStatus, Standard
from watchtower.model import Status
from watchtower.report.model import CheckLine, Section

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checks"
T = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _line(check: str, target: str, status: str, evidence: dict[str, Any] | None = None
          ) -> CheckLine:
    return CheckLine(check=check, title=check, family=check.split(".")[0], target=target,
                     target_kind="endpoint", status=Status(status), summary="", observed_since=T,
                     last_seen=T, standards=(), hint="", remediations=(),
                     evidence=evidence or {})


def _ncsc_line(case: str, target: str) -> CheckLine:
    from watchtower.probe import registry

    check = registry.checks()["web.tls.ncsc"]
    facts = next(c for c in json.loads((FIXTURES / "web.tls.ncsc.json").read_text())
                 if c["name"].startswith(case))["facts"]
    return _line("web.tls.ncsc", target, str(check.judge(facts).status), check.evidence(facts))


def _by_id(section: Section) -> dict[str, states.TestState]:
    return {s.test.id: s for tests in section.frameworks.values() for s in tests}


def test_criteria_and_whole_checks_become_test_states() -> None:
    section = Section("a.test", "domain", [], [
        _ncsc_line("good server", "www.a.test:443"),
        _line("web.hsts", "www.a.test:443", "warn"),
        _line("mail.dmarc.policy", "a.test", "fail"),
    ])
    got = _by_id(section)
    assert got["web_https_tls_version"].status is InStatus.PASSED
    assert got["web_https_http_hsts"].status is InStatus.WARNING
    assert got["mail_auth_dmarc_policy"].status is InStatus.FAILED
    assert got["mail_auth_spf_exist"].status is InStatus.NOT_TESTED  # its check did not run
    assert got["web_rpki_exists"].status is InStatus.NOT_TESTED
    assert "cannot test" in got["web_rpki_exists"].detail


def test_several_endpoints_combine_to_the_worst() -> None:
    section = Section("a.test", "domain", [], [
        _ncsc_line("good server", "www.a.test:443"),
        _ncsc_line("TLS 1.0/1.1", "old.a.test:443"),
    ])
    state = _by_id(section)["web_https_tls_version"]
    assert state.status is InStatus.FAILED
    assert state.targets == ["www.a.test:443", "old.a.test:443"]
    assert state.detail.startswith("old.a.test:443")


def test_pas_toe_of_leg_uit_never_passes_rpki() -> None:
    section = Section("a.test", "domain", [], [_ncsc_line("good server", "www.a.test:443")])
    by_standard = {s.standard: s for s in section.standards}
    assert by_standard[Standard.RPKI].status is InStatus.NOT_TESTED
    assert by_standard[Standard.HTTPS_HSTS].status is InStatus.PASSED
    assert set(by_standard) == set(Standard)


def test_report_text_and_json_have_a_section_per_framework() -> None:
    from watchtower.report import render_text
    from watchtower.report.model import Changes, Report
    from watchtower.report.over_time import Coverage, Period

    section = Section("a.test", "domain", [("a.test", "zone")],
                      [_ncsc_line("TLS 1.0/1.1", "old.a.test:443")])
    period = Period(T, T + dt.timedelta(days=1))
    report = Report("adhoc", None, period, T, [section], [],
                    Coverage(period, None, None, dt.timedelta(hours=24)),
                    Changes("history", None, T), [], [])
    text = render_text(report)
    for heading in ("internet.nl web", "internet.nl mail", "pas toe of leg uit"):
        assert heading in text
    assert "failed      web_https_tls_version: TLS version" in text
    body = report.to_json()["sections"][0]["frameworks"]
    assert {s["id"]: s["status"] for s in body["internet.nl web"]}["web_https_tls_version"] \
        == "failed"
    assert {s["standard"]: s["status"] for s in body["pas toe of leg uit"]}["RPKI"] == \
        "not_tested"


def test_pdf_has_the_framework_sections() -> None:
    from io import BytesIO

    from pypdf import PdfReader

    from watchtower.report import render_pdf
    from watchtower.report.model import Changes, Report
    from watchtower.report.over_time import Coverage, Period

    section = Section("a.test", "domain", [("a.test", "zone")],
                      [_ncsc_line("TLS 1.0/1.1", "old.a.test:443")])
    period = Period(T, T + dt.timedelta(days=1))
    report = Report("adhoc", None, period, T, [section], [],
                    Coverage(period, None, None, dt.timedelta(hours=24)),
                    Changes("history", None, T), [], [])
    text = " ".join(p.extract_text() for p in PdfReader(BytesIO(render_pdf(report))).pages)
    assert "web_https_tls_version" in text and "pas toe of leg uit" in text
