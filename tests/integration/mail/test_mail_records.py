"""The DNS-record mail checks against the fixture zones served by a real PowerDNS."""

from __future__ import annotations

from typing import Any

import pytest

from watchtower.model import Result
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep, select_checks

from .conftest import MailWorld, d


def sweep(world: MailWorld, domains: list[dict[str, Any]], only: list[str],
          **settings: Any) -> dict[tuple[str, str], Result]:
    fleet = world.fleet(domains, **settings)
    outcome = run_sweep(fleet, None, select_checks(only))
    return {(r.check, r.target.name): r for r in outcome.results}


RECORD_CASES = [
    ("mail.spf.record", "good", "ok", "one valid SPF record"),
    ("mail.spf.record", "twospf", "fail", "2 SPF records"),
    ("mail.spf.record", "syntax", "fail", "syntax error"),
    ("mail.spf.record", "nospf", "fail", "no SPF record"),
    ("mail.spf.lookups", "good", "ok", "1 DNS-querying"),
    ("mail.spf.lookups", "lookups", "fail", "11 DNS-querying terms"),
    ("mail.spf.lookups", "voids", "fail", "3 void lookups"),
    ("mail.spf.lookups", "loop", "fail", "include loop"),
    ("mail.spf.lookups", "missing-include", "fail", "nowhere"),
    ("mail.spf.policy", "good", "ok", "-all"),
    ("mail.spf.policy", "softfail", "ok", "~all"),
    ("mail.spf.policy", "redirect", "ok", f"_spf.{d('good')}"),
    ("mail.spf.policy", "plusall", "fail", "+all"),
    ("mail.spf.policy", "neutral", "fail", "neutral"),
    ("mail.spf.policy", "noall", "fail", "no 'all'"),
    ("mail.spf.policy", "ptr", "warn", "ptr"),
    ("mail.dmarc.record", "good", "ok", "valid DMARC record"),
    ("mail.dmarc.record", "nodmarc", "fail", "no DMARC record"),
    ("mail.dmarc.record", "twodmarc", "fail", "2 DMARC records"),
    ("mail.dmarc.record", "syntax", "fail", "duplicate"),
    ("mail.dmarc.record", "sub.orgwide-mailchk.test", "ok", "organizational domain"),
    ("mail.dmarc.policy", "good", "ok", "p=reject"),
    ("mail.dmarc.policy", "dmarcnone", "fail", "p=none"),
    ("mail.dmarc.policy", "sub.orgwide-mailchk.test", "ok", "sp=quarantine"),
    ("mail.dmarc.policy", "plusall", "fail", "p=none"),
    ("mail.dmarc.external-report", "good", "ok", "inside"),
    ("mail.dmarc.external-report", "external", "fail", "not authorized"),
    ("mail.dmarc.external-report", "authorized", "ok", "all authorized"),
    ("mail.tls-rpt", "good", "ok", "mailto:tls@"),
    ("mail.tls-rpt", "nodmarc", "warn", "no TLS-RPT"),
    ("mail.mx", "good", "ok", "1 MX host"),
    ("mail.mx", "cname-mx", "fail", "CNAME"),
    ("mail.mx", "parked", "ok", "null MX"),
]


@pytest.mark.parametrize(("check", "label", "status", "fragment"), RECORD_CASES,
                         ids=[f"{c}:{lbl}" for c, lbl, _, _ in RECORD_CASES])
def test_record_checks_against_powerdns(mail_world: MailWorld, check: str, label: str,
                                        status: str, fragment: str) -> None:
    results = _all_records(mail_world)
    result = results[(check, d(label))]
    assert (str(result.status), fragment in result.summary) == (status, True), result.summary


_CACHE: dict[str, dict[tuple[str, str], Result]] = {}


def _all_records(world: MailWorld) -> dict[tuple[str, str], Result]:
    """One sweep of every record check over every fixture domain (shared by the cases)."""
    if "r" not in _CACHE:
        labels = sorted({lbl for _, lbl, _, _ in RECORD_CASES})
        domains = [{"name": d(lbl), "dkim_selectors": [], "mta_sts": False}
                   for lbl in labels]
        _CACHE["r"] = sweep(world, domains, ["mail.spf.*", "mail.dmarc.*", "mail.tls-rpt",
                                             "mail.mx"])
    return _CACHE["r"]


def test_dkim_selectors(mail_world: MailWorld) -> None:
    results = sweep(mail_world, [
        {"name": d("good"), "dkim_selectors": ["s1"]},
        {"name": d("softfail"), "dkim_selectors": ["s1"]},
    ], ["mail.dkim"])
    assert str(results[("mail.dkim", d("good"))].status) == "ok"
    assert "rsa-2048" in results[("mail.dkim", d("good"))].summary
    missing = results[("mail.dkim", d("softfail"))]
    assert str(missing.status) == "fail" and "NXDOMAIN" in missing.summary
    weak = sweep(mail_world, [{"name": d("good"), "dkim_selectors": ["weak"]}], ["mail.dkim"])
    assert str(weak[("mail.dkim", d("good"))].status) == "warn"
    gone = sweep(mail_world, [{"name": d("good"), "dkim_selectors": ["gone", "s1"]}],
                 ["mail.dkim"])
    assert "revoked" in gone[("mail.dkim", d("good"))].summary


def test_parked_domains(mail_world: MailWorld) -> None:
    results = sweep(mail_world, [{"name": d("parked"), "sending": False},
                                 {"name": d("halfparked"), "sending": False}],
                    ["mail.parked"])
    assert str(results[("mail.parked", d("parked"))].status) == "ok"
    half = results[("mail.parked", d("halfparked"))]
    assert str(half.status) == "fail"
    assert "must be reject" in half.summary and "null MX" in half.summary


def test_dnsbl_through_the_configured_resolver(mail_world: MailWorld) -> None:
    domains = [{"name": d("good"), "dnsbl": [d("bl")]},
               {"name": d("softfail"), "dnsbl": [d("bl-refuse")]},
               {"name": d("neutral"), "dnsbl": [d("bl-clean")]}]
    results = sweep(mail_world, domains, ["mail.dnsbl"])
    listed = results[("mail.dnsbl", d("good"))]
    assert str(listed.status) == "fail" and "listed for the test" in listed.summary
    refused = results[("mail.dnsbl", d("softfail"))]
    assert str(refused.status) == "error" and "not a listing" in refused.summary
    assert str(results[("mail.dnsbl", d("neutral"))].status) == "ok"


def test_one_sweep_asks_each_question_once(mail_world: MailWorld) -> None:
    """SPF, DMARC, MTA-STS, TLS-RPT, DKIM and MX checks of one domain share the DNS cache."""
    fleet = mail_world.fleet([{"name": d("good"), "dkim_selectors": ["s1"]}])
    checks = {cid: c for cid, c in select_checks(["mail.*"]).items()
              if cid not in ("mail.smtp.starttls", "mail.smtp.certificate", "mail.open-relay",
                             "mail.dane")}
    outcome = run_sweep(fleet, None, checks)
    stats = outcome.dns_stats
    assert stats["hits"] > stats["misses"] > 0
    assert stats["sent"] == stats["misses"], stats  # no question went out twice
    assert len(outcome.results) >= 10


def test_every_mail_check_cites_a_standard() -> None:
    for cid, check in registry.checks().items():
        if cid.startswith("mail."):
            assert check.meta.standards, cid
