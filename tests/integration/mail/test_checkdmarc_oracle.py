"""Differential oracle: checkdmarc and watchtower read the same PowerDNS zones; their SPF and
DMARC verdicts must agree wherever checkdmarc has an opinion.

checkdmarc is pointed at the PowerDNS port by handing it a dnspython `Do53Nameserver` with that
port (its `nameservers` argument passes such objects through untouched), so no port-53 listener
or forwarder is needed. Where the two differ on purpose, `DELIBERATE` names the RFC clause.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers.base import require_module
from watchtower.model import Status
from watchtower.probe.sweep import run_sweep, select_checks

from .conftest import MailWorld, zones

# label -> (check id, why watchtower's verdict differs from checkdmarc's by design)
DELIBERATE: dict[str, tuple[str, str]] = {
    "plusall": ("mail.spf.policy", "RFC 7208 5.1: '+all' authorizes every host; checkdmarc only "
                "warns, we fail"),
    "neutral": ("mail.spf.policy", "RFC 7208 8.2: '?all' asserts nothing; we fail"),
    "noall": ("mail.spf.policy", "RFC 7208 4.7: no 'all' and no redirect gives neutral; we fail"),
}


#: label -> why the oracle itself is wrong there, for checkdmarc releases before 6. (The
#: project holds cryptography below 47 for sslyze, and checkdmarc 6 needs 50: pip then picks
#: 5.17.) checkdmarc 6 agrees with watchtower on these.
ORACLE_BEFORE_6: dict[str, str] = {
    "missing-include": "RFC 7208 5.2: an include whose domain does not exist is a permerror; "
                       "checkdmarc 5 calls the record valid",
}


def _oracle_wrong(label: str) -> bool:
    from importlib.metadata import version

    return label in ORACLE_BEFORE_6 and int(version("checkdmarc").split(".")[0]) < 6


def _checkdmarc(world: MailWorld, domain: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import dns.nameserver
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.spf import check_spf

    ns = [dns.nameserver.Do53Nameserver("127.0.0.1", world.dns.dns_port)]
    spf = check_spf(domain, nameservers=ns, timeout=2.0, retries=0)
    dmarc = check_dmarc(domain, nameservers=ns, timeout=2.0, retries=0)
    return dict(spf), dict(dmarc)


def _has_opinion(result: dict[str, Any]) -> bool:
    """False when checkdmarc could not ask: it walks DMARC up to `_dmarc.test`, a zone our
    PowerDNS does not serve (REFUSED). A DNS failure is no verdict to compare with."""
    return "nameservers failed" not in str(result.get("error") or "")


def _labels() -> list[str]:
    return sorted(name for name in zones() if "mailchk" in name and not name.startswith(
        ("bl", "mailchk")))


def test_spf_and_dmarc_verdicts_agree_with_checkdmarc(mail_world: MailWorld) -> None:
    require_module("checkdmarc", why="differential oracle")
    domains = _labels()
    fleet = mail_world.fleet([{"name": n, "mta_sts": False} for n in domains])
    outcome = run_sweep(fleet, None, select_checks(["mail.spf.*", "mail.dmarc.record"]))
    ours = {(r.check, r.target.name): r for r in outcome.results}
    disagreements = []
    compared = 0
    for domain in domains:
        spf, dmarc = _checkdmarc(mail_world, domain)
        label = domain.split(".")[0]
        # SPF: checkdmarc's `valid` means no permerror (syntax, limits, loops, includes).
        if _has_opinion(spf):
            spf_ok = all(ours[(c, domain)].status is Status.OK
                         for c in ("mail.spf.record", "mail.spf.lookups"))
            compared += 1
            if spf_ok != bool(spf["valid"]) and not _oracle_wrong(label):
                disagreements.append((domain, "spf", spf_ok, spf.get("error")))
            if label in DELIBERATE:
                policy = ours[("mail.spf.policy", domain)].status
                assert policy is Status.FAIL and spf["valid"], (domain, DELIBERATE[label][1])
        if _has_opinion(dmarc):
            dmarc_ok = ours[("mail.dmarc.record", domain)].status is Status.OK
            compared += 1
            if dmarc_ok != bool(dmarc["valid"]):
                disagreements.append((domain, "dmarc", dmarc_ok, dmarc.get("error")))
    assert compared >= len(domains), compared  # most pairs must really be compared
    assert not disagreements, disagreements


@pytest.mark.parametrize("label", sorted(DELIBERATE))
def test_deliberate_differences_name_their_rfc(label: str) -> None:
    check, why = DELIBERATE[label]
    assert check.startswith("mail.spf") and "RFC 7208" in why
