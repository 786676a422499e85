"""One root cause on the lab: bravo's expired certificate (the lab's `cert-expired` fault, on in
the demo) is the one `fail`; the web and fediverse checks that stand on it are `error` with that
cause, never probed; alerting opens one incident listing them. Switched off, they are judged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchtower.alerting.incidents import incidents
from watchtower.alerting.processor import AlertProcessor
from watchtower.compliance.score import placement, section_scores
from watchtower.lab.control import ControlClient
from watchtower.model import Cause, Result, Status, TargetKind
from watchtower.probe.sweep import run_sweep, select_checks
from watchtower.store import Store

CHECKS = ["web.tls.certificate", "web.tls.version", "web.hsts", "web.headers",
          "web.https.redirect", "web.security-txt", "fedi", "drift.version"]


def sweep(fleet: Any, store: Store, proc: AlertProcessor) -> dict[tuple[str, str], Result]:
    targets = [t for t in fleet.targets() if t.kind in (TargetKind.PEERTUBE, TargetKind.ENDPOINT)
               and t.name.startswith("video.bravo.test")]
    outcome = run_sweep(fleet, store, select_checks(CHECKS), targets=targets,
                        on_stored=proc.process)
    return {(r.check, r.target.name): r for r in outcome.results}


def test_a_bad_certificate_is_one_fail_and_one_incident(lab, lab_fleet, tmp_path: Path  # type: ignore[no-untyped-def]
                                                        ) -> None:
    client = ControlClient(lab.dir)
    was_on = "cert-expired" in client.faults().get("bravo.test", [])
    fleet = lab_fleet.model_copy(update={"alerting": lab_fleet.alerting.model_copy(
        update={"failure_threshold": 1})})
    store = Store(f"sqlite:///{tmp_path / 'wt.db'}")
    proc = AlertProcessor(store, fleet)
    endpoint = f"video.bravo.test:{lab.web.https_port}"
    try:
        client.set("bravo.test", "cert-expired", True)
        broken = sweep(fleet, store, proc)
        scores = section_scores(store.statuses(), placement(fleet.targets()))
        open_incidents = incidents(store.alerts.states(), store.caused_by())
        client.set("bravo.test", "cert-expired", False)
        healthy = sweep(fleet, store, proc)
    finally:
        client.set("bravo.test", "cert-expired", was_on)
    root = Cause("web.tls.certificate", endpoint)
    assert broken[("web.tls.certificate", endpoint)].status is Status.FAIL
    # bravo's zone has one name server (the demo's single-ns): a failure of dns.ns.count
    # alone, which does not block (the zone is served), so the rest is judged
    assert [k for k, r in broken.items() if r.status is Status.FAIL] == [
        ("dns.ns.count", "bravo.test"), ("web.tls.certificate", endpoint)], {
        k: r.summary for k, r in broken.items()}
    assert broken[("dns.ns.authoritative", "bravo.test")].status is Status.OK
    caused = sorted(k for k, r in broken.items() if r.cause == root)
    assert caused == sorted([
        ("web.hsts", endpoint), ("web.headers", endpoint), ("web.https.redirect", endpoint),
        ("web.security-txt", endpoint),
        *[(c, "video.bravo.test") for c in ("fedi.health", "fedi.actor", "fedi.authorized-fetch",
                                            "fedi.host-meta", "fedi.nodeinfo", "fedi.queues",
                                            "fedi.webfinger", "drift.version")]])
    assert all(broken[k].status is Status.ERROR for k in caused)
    assert broken[("web.https.redirect", endpoint)].summary.startswith(
        f"not judged: web.tls.certificate on {endpoint} failed (certificate expired")
    # the score counts the root's one fail (and the zone's own); its dependents are errors
    (bravo,) = scores
    assert (bravo.name, bravo.overall.fail, bravo.overall.error) == ("bravo.test", 2,
                                                                      len(caused))
    # one incident per root cause, the certificate's dependents listed under it
    by_root = {(i.check, i.target): i for i in open_incidents}
    assert set(by_root) == {("dns.ns.count", "bravo.test"), (root.check, root.target)}
    assert by_root[("dns.ns.count", "bravo.test")].affected == []
    assert by_root[(root.check, root.target)].affected == sorted(f"{c} on {t}" for c, t in caused)
    # with the certificate renewed, the dependents are judged on their own
    assert all(r.cause is None for r in healthy.values())
    assert healthy[("web.tls.certificate", endpoint)].status is Status.OK
    store.close()
