"""One incident per root cause: the root's alert fires once with its dependents listed, the
dependents' own alerts stay quiet, one resolve notice; maintenance windows keep silencing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.unit.alerts.helpers import BRAVO_WINDOW, T0, fleet, minutes, result, store
from watchtower.alerting.incidents import incidents
from watchtower.alerting.processor import AlertProcessor
from watchtower.model import Cause, Result, Status
from watchtower.store import Store

CHANNEL = """
[[notifications.email]]
name = "ops-mail"
host = "127.0.0.1"
sender = "wt@example.org"
to = ["ops@example.org"]
"""
ROOT = Cause("web.tls.certificate", "bravo.test")
DEPENDENTS = ("web.hsts", "fedi.actor", "fedi.health")


def sweep(st: Store, proc: AlertProcessor, at: dt.datetime, root: Status) -> list[str]:
    """One sweep as the engine runs it: the root first, then its dependents (caused errors
    while the root fails, ok otherwise), each stage stored then processed."""
    flips = []
    stages: list[list[Result]] = [[result(root, at, check=ROOT.check, family="web")]]
    caused = root.is_problem
    stages.append([result("error" if caused else "ok", at, check=c, family=c.split(".")[0])
                   for c in DEPENDENTS])
    for r in stages[1]:
        r.cause = ROOT if caused else None
    for batch in stages:
        st.record(batch)
        flips += [f"{f.check}:{f.old}>{f.new}" for f in proc.process(batch, now=at)]
    return flips


def test_a_root_cause_is_one_incident_one_notice_and_one_resolve(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(CHANNEL))
    flips = []
    for i in range(3):
        flips += sweep(s, proc, T0 + minutes(i), Status.FAIL)
    assert flips == ["web.tls.certificate:pending>firing"]  # the dependents never fire
    (notice,) = s.alerts.outbox()
    assert notice.kind == "firing" and notice.check_id == "web.tls.certificate"
    assert notice.subject.endswith("FIRING: web.tls.certificate on bravo.test (+3 affected)")
    assert ("  - fedi.actor on bravo.test\n  - fedi.health on bravo.test\n"
            "  - web.hsts on bravo.test\n") in notice.body
    (incident,) = incidents(s.alerts.states(), s.caused_by())
    assert (incident.check, incident.target, incident.status) == (ROOT.check, "bravo.test",
                                                                  "fail")
    assert incident.affected == [f"{c} on bravo.test" for c in sorted(DEPENDENTS)]
    # the certificate is fixed: the dependents are judged again, one resolve notice
    for i in range(3, 5):
        flips += sweep(s, proc, T0 + minutes(i), Status.OK)
    assert flips[-1] == "web.tls.certificate:firing>resolved"
    assert [r.kind for r in s.alerts.outbox()] == ["firing", "resolved"]
    assert incidents(s.alerts.states(), s.caused_by()) == [] and s.caused_by() == {}


def test_a_dependent_already_firing_on_its_own_is_listed_under_the_root(tmp_path: Path
                                                                       ) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(CHANNEL))
    for i in range(3):  # HSTS missing: its own incident
        r = result("fail", T0 + minutes(i), check="web.hsts", family="web")
        s.record([r])
        proc.process([r], now=r.at)
    (own,) = incidents(s.alerts.states(), s.caused_by())
    assert own.check == "web.hsts" and own.affected == []
    for i in range(3, 6):
        sweep(s, proc, T0 + minutes(i), Status.FAIL)
    (root,) = incidents(s.alerts.states(), s.caused_by())
    assert root.check == "web.tls.certificate" and "web.hsts on bravo.test" in root.affected
    assert [r.check_id for r in s.alerts.outbox()] == ["web.hsts", "web.tls.certificate"]


def test_threshold_one_reads_ok_to_firing(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet("[alerting]\nfailure_threshold = 1\n"))
    assert sweep(s, proc, T0, Status.FAIL) == ["web.tls.certificate:ok>firing"]


MAINTENANCE = CHANNEL + BRAVO_WINDOW


def test_maintenance_windows_keep_silencing_an_incident(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(MAINTENANCE))
    for i in range(3):
        sweep(s, proc, T0 + minutes(i), Status.FAIL)
    assert s.alerts.outbox() == []
    (incident,) = incidents(s.alerts.states(), s.caused_by())
    assert incident.silenced_by == "bravo upgrade"
    sweep(s, proc, T0 + minutes(61), Status.FAIL)  # the window closed, still broken
    (notice,) = s.alerts.outbox()
    assert notice.check_id == "web.tls.certificate" and "(+3 affected)" in notice.subject


def test_two_sweeps_counting_a_new_pair_at_once_do_not_fail(tmp_path: Path) -> None:
    """A prerequisite runs in the sweep of every group that needs it, so two sweeps may meet
    a pair's first result at once: the one that loses the insert reads the other's row."""
    from sqlmodel import Session

    from watchtower.store import AlertStateRow

    s = store(tmp_path)
    calls = []

    def change(states: dict) -> list:  # type: ignore[type-arg]
        calls.append(dict(states))
        if len(calls) == 1:  # the other sweep commits the same new pair meanwhile
            with Session(s.engine) as other:
                other.add(AlertStateRow(check_id="dns.ns.count", target="bravo.test",
                                        family="dns", since=T0, problems=1))
                other.commit()
        st = states.setdefault(("dns.ns.count", "bravo.test"), AlertStateRow(
            check_id="dns.ns.count", target="bravo.test", family="dns", since=T0))
        st.problems += 1
        return []

    s.alerts.update_states({("dns.ns.count", "bravo.test")}, change)
    assert len(calls) == 2 and ("dns.ns.count", "bravo.test") in calls[1]
    (state,) = s.alerts.states()
    assert state.problems == 2  # the other sweep's count, then this one's
