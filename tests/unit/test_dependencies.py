"""Dependencies between checks: prerequisites first, one root cause, dependents `error` with a
`cause` (watchtower/probe/dependencies.py). Runs the registered checks' plan with a stand-in for
the runner, so the resolution is tested without a network."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pytest

from watchtower.config import Fleet
from watchtower.model import Cause, Result, Status, Target, TargetKind, Verdict
from watchtower.probe import registry
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.dependencies import (
    DependencyError,
    Prerequisites,
    TargetIndex,
    depth,
    run_staged,
)
from watchtower.probe.runner import Job, plan_jobs

AT = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
FLEET = Fleet.model_validate({
    "services": [
        {"name": "social", "kind": "mastodon", "base_url": "https://social.alpha.test/",
         "probe_account": "watchtower@alpha.test"},
        {"name": "s3", "kind": "garage", "base_url": "https://garage.alpha.test:3903/",
         "admin_url": "https://garage.alpha.test:3903/",
         "s3_endpoint": "https://s3.alpha.test/", "s3_bucket": "probe",
         "s3_access_key": {"$env": "WT_X"}, "s3_secret_key": {"$env": "WT_Y"}},
    ],
    "backups": [{"name": "nightly", "s3_endpoint": "https://s3.alpha.test/", "bucket": "b",
                 "s3_access_key": {"$env": "WT_X"}, "s3_secret_key": {"$env": "WT_Y"}}],
})


def target(kind: TargetKind, name: str) -> Target:
    (found,) = [t for t in FLEET.targets() if t.kind == kind and t.name == name]
    return found


SOCIAL = target(TargetKind.MASTODON, "social")
SOCIAL_HTTPS = target(TargetKind.ENDPOINT, "social.alpha.test")
GARAGE = target(TargetKind.GARAGE, "s3")
BACKUP = target(TargetKind.BACKUP, "nightly")


def fake_run(statuses: dict[tuple[str, str], Status], ran: list[str]):  # type: ignore[no-untyped-def]
    """A runner that judges each job by the table (default ok) and records what ran."""

    def run(stage: list[Job]) -> Iterable[Result]:
        for job in stage:
            ran.append(f"{job.check.meta.id}@{job.target.name}")
            status = statuses.get((job.check.meta.id, job.target.name), Status.OK)
            yield Result(job.check.meta.id, job.check.meta.family, job.target, status,
                         f"{status} said {job.check.meta.id}", {}, 1.0, AT)

    return run


def sweep(ids: list[str], targets: list[Target], statuses: dict[tuple[str, str], Status],
          fleet: Fleet = FLEET) -> tuple[dict[tuple[str, str], Result], list[str]]:
    checks = registry.checks()
    jobs = plan_jobs(fleet, {i: checks[i] for i in ids}, targets)
    ran: list[str] = []
    plan = Prerequisites(fleet, jobs, checks)
    results = {(r.check, r.target.name): r for r in run_staged(plan, fake_run(statuses, ran))}
    return results, ran


def test_every_declared_prerequisite_is_a_registered_check_and_there_is_no_cycle() -> None:
    checks = registry.checks()
    depths = {cid: depth(cid, checks) for cid in checks}
    assert depths["dns.ns.count"] == 0 and depths["dns.ns.authoritative"] == 1
    assert depths["web.tls.certificate"] == 2 and depths["mail.mx"] == 2
    assert depths["fedi.health"] == 3 and depths["fedi.actor"] == 4
    assert depths["drift.version"] == 4


def meta(cid: str, needs: tuple[str, ...]) -> CheckMeta:
    return CheckMeta(cid, "test", cid, (TargetKind.ZONE,), needs=needs)


class Stub(Check):
    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return {}

    def judge(self, facts: Facts) -> Verdict:
        return Verdict(Status.OK, "")


def stub(cid: str, *needs: str) -> Check:
    check = Stub()
    check.meta = meta(cid, needs)  # type: ignore[misc]
    return check


def test_a_cycle_or_an_unknown_prerequisite_is_a_clear_error() -> None:
    cycle = {"a": stub("a", "b"), "b": stub("b", "a")}
    with pytest.raises(DependencyError, match="cycle: a -> b -> a"):
        depth("a", cycle)
    with pytest.raises(DependencyError, match="a needs nope, which is not a registered check"):
        depth("a", {"a": stub("a", "nope")})


def test_a_prerequisite_runs_on_the_target_the_dependent_is_reached_through() -> None:
    checks = registry.checks()
    index = TargetIndex(FLEET.targets())
    assert index.prerequisite(checks["web.tls.certificate"], SOCIAL) == SOCIAL_HTTPS
    assert index.prerequisite(checks["web.tls.certificate"], SOCIAL_HTTPS) == SOCIAL_HTTPS
    assert index.prerequisite(checks["storage.health"], BACKUP) == GARAGE
    assert index.prerequisite(checks["fedi.health"], GARAGE) is None  # runs as usual


def test_a_bad_certificate_is_the_one_fail_and_its_dependents_error_with_that_cause() -> None:
    ids = ["web.tls.certificate", "web.hsts", "web.https.redirect", "web.security-txt",
           "web.tls.version", "fedi.health", "fedi.actor", "fedi.host-meta", "drift.version"]
    results, ran = sweep(ids, [SOCIAL, SOCIAL_HTTPS],
                         {("web.tls.certificate", "social.alpha.test"): Status.FAIL})
    root = Cause("web.tls.certificate", "social.alpha.test")
    fails = [k for k, r in results.items() if r.status is Status.FAIL]
    assert fails == [("web.tls.certificate", "social.alpha.test")]
    caused = {k[0] for k, r in results.items() if r.cause == root}
    assert caused == {"web.hsts", "web.https.redirect", "web.security-txt", "fedi.health",
                      "fedi.actor", "fedi.host-meta", "drift.version"}
    for key in caused:
        r = next(r for k, r in results.items() if k[0] == key)
        assert r.status is Status.ERROR and r.evidence["error_kind"] == "prerequisite"
        assert r.summary.startswith("not judged: web.tls.certificate on social.alpha.test "
                                    "failed (fail said web.tls.certificate)")
    assert results[("web.tls.version", "social.alpha.test")].status is Status.OK  # stands alone
    # the dependents were never probed: only the root and the independent check ran
    assert sorted(ran) == ["web.tls.certificate@social.alpha.test",
                           "web.tls.version@social.alpha.test"]


def test_a_passing_prerequisite_lets_its_dependents_run_and_a_chain_names_the_root() -> None:
    results, ran = sweep(["fedi.actor"], [SOCIAL], {("fedi.health", "social"): Status.ERROR})
    # fedi.actor alone: its prerequisites were added to the sweep, in order
    assert ran == ["web.tls.certificate@social.alpha.test", "fedi.health@social"]
    assert results[("fedi.actor", "social")].cause == Cause("fedi.health", "social")
    results, ran = sweep(["fedi.actor"], [SOCIAL], {})
    assert ran[-1] == "fedi.actor@social" and results[("fedi.actor", "social")].cause is None


def test_a_garage_cluster_down_leaves_its_backups_and_storage_checks_unjudged() -> None:
    results, _ = sweep(["storage.health", "storage.roundtrip", "backup.freshness"],
                       [GARAGE, BACKUP], {("storage.health", "s3"): Status.FAIL})
    assert results[("backup.freshness", "nightly")].cause == Cause("storage.health", "s3")
    assert results[("storage.roundtrip", "s3")].cause == Cause("storage.health", "s3")


def test_a_disabled_prerequisite_is_not_added_and_its_dependents_run() -> None:
    fleet = Fleet.model_validate(FLEET.model_dump(mode="json") | {
        "checks": {"web.tls.certificate": {"disabled": True}}})
    _, ran = sweep(["web.hsts"], [SOCIAL_HTTPS], {}, fleet)
    assert ran == ["web.hsts@social.alpha.test"]


def result_of(check: str, status: Status, evidence: dict) -> Result:  # type: ignore[type-arg]
    return Result(check, "mail", Target(TargetKind.MAIL_HOST, "mx1"), status, "", evidence,
                  1.0, AT)


def test_mail_prerequisites_block_only_on_an_outage() -> None:
    checks = registry.checks()
    submission, imap = checks["mail.submission"], checks["mail.imap"]
    down = {"ports": [{"port": 587, "error_kind": "unreachable"},
                      {"port": 465, "error_kind": "unreachable"}]}
    assert submission.blocks(result_of("mail.submission", Status.FAIL, down))
    auth_in_clear = {"ports": [{"port": 587, "auth_before_tls": ["PLAIN"]}, {"port": 465}]}
    assert not submission.blocks(result_of("mail.submission", Status.FAIL, auth_in_clear))
    assert imap.blocks(result_of("mail.imap", Status.FAIL,
                                 {"ports": [{"port": 993, "error_kind": "login"}]}))
    assert not imap.blocks(result_of("mail.imap", Status.FAIL,
                                     {"ports": [{"port": 993}, {"port": 143}]}))
    assert imap.blocks(result_of("mail.imap", Status.ERROR, {}))


ZONED = Fleet.model_validate({
    "zones": [{"name": "alpha.test"}],
    "mail_domains": [{"name": "alpha.test"}, {"name": "lists.alpha.test"}],
    "mail_hosts": [{"name": "mx1", "host": "mx1.alpha.test"}],
    "services": [{"name": "social", "kind": "mastodon", "base_url": "https://social.alpha.test/",
                  "probe_account": "watchtower@alpha.test"}],
})


def test_a_zone_that_is_not_served_leaves_everything_under_it_unjudged() -> None:
    targets = ZONED.targets()
    results, ran = sweep(["dns.ns.count", "dns.ns.authoritative", "dns.soa.timers", "mail.mx",
                          "mail.submission", "web.tls.certificate", "fedi.actor"], targets,
                         {("dns.ns.authoritative", "alpha.test"): Status.FAIL}, ZONED)
    root = Cause("dns.ns.authoritative", "alpha.test")
    fails = [k for k, r in results.items() if r.status is Status.FAIL]
    assert fails == [("dns.ns.authoritative", "alpha.test")]
    # every job but the two zone checks: the mail domains, the mail host, every endpoint
    # (the service's, the delegation host's, the MTA-STS hosts') and the service
    assert {k for k, r in results.items() if r.cause != root} == {
        ("dns.ns.count", "alpha.test"), ("dns.ns.authoritative", "alpha.test")}
    assert {k for k, r in results.items() if r.cause == root} >= {
        ("dns.soa.timers", "alpha.test"), ("mail.mx", "alpha.test"),
        ("mail.mx", "lists.alpha.test"), ("mail.submission", "mx1"),
        ("web.tls.certificate", "social.alpha.test"), ("fedi.health", "social"),
        ("fedi.actor", "social")}
    assert ran == ["dns.ns.count@alpha.test", "dns.ns.authoritative@alpha.test"]


def test_zone_prerequisites_block_only_when_the_zone_is_not_served() -> None:
    checks = registry.checks()
    count, auth = checks["dns.ns.count"], checks["dns.ns.authoritative"]
    zone = Target(TargetKind.ZONE, "alpha.test")

    def r(check: str, status: Status, evidence: dict) -> Result:  # type: ignore[type-arg]
        return Result(check, "dns", zone, status, "", evidence, 1.0, AT)

    assert count.blocks(r("dns.ns.count", Status.FAIL, {"rcode": "NXDOMAIN", "nameservers": []}))
    one = {"rcode": "NOERROR", "nameservers": [{"name": "ns1.", "addresses": ["192.0.2.1"]}]}
    assert not count.blocks(r("dns.ns.count", Status.FAIL, one))  # < 2 NS: its own failure
    assert not count.blocks(r("dns.ns.count", Status.ERROR, {"error": "timeout"}))
    served = {"rcode": "NOERROR", "aa": True, "soa": "ns1. h. 1 2 3 4 5"}
    lame = {"rcode": "REFUSED"}
    assert not auth.blocks(r("dns.ns.authoritative", Status.FAIL, {"servers": [served, lame]}))
    assert auth.blocks(r("dns.ns.authoritative", Status.FAIL, {"servers": [lame, lame]}))
    assert auth.blocks(r("dns.ns.authoritative", Status.ERROR,
                         {"servers": [{"error": "timeout"}]}))  # asked, none answered
    assert not auth.blocks(r("dns.ns.authoritative", Status.ERROR, {"error": "SERVFAIL"}))
