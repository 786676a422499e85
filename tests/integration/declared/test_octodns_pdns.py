"""Zones kept as code by octoDNS, against the real parts: octoDNS and octodns-powerdns from
PyPI, the suite's real PowerDNS, and a real git repository in a temp dir.

- drift: a record changed by hand on the server is reported with octoDNS's own plan as
  evidence, apart from records the fleet needs that the YAML lacks;
- a missing DMARC record fixed in `commit` mode (a commit on the review branch, `applied`; the
  operator merges and runs `octodns-sync`, then `verified`) and in `sync` mode (commit and sync,
  verified at once); undo restores the file, the branch and the server;
- a dirty work tree and a YAML syntax error are refused with a clear reason, nothing changed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from watchtower.config import Fleet
from watchtower.dnsdecl.octodns import Refused
from watchtower.dnsdecl.records import txt_value
from watchtower.model import Status
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.store import StateRow, Store

KEY_ENV = "WT_OCTO_PDNS_KEY"
DMARC = "v=DMARC1; p=reject; rua=mailto:dmarc-reports@{zone}"

ZONE_YAML = """---
# {zone}: kept by hand, synced by octoDNS
'':
  - type: CAA
    value:
      flags: 0
      tag: issue
      value: letsencrypt.org
  - type: MX  # our one mail host
    values:
      - exchange: mail.{zone}.
        preference: 10
  - type: TXT
    values:
      - v=spf1 mx -all
      - google-site-verification=abc  # not ours: must stay
_smtp._tls:
  type: TXT
  value: v=TLSRPTv1\\; rua=mailto:tls-reports@{zone}
mail:
  type: A
  value: 192.0.2.10
"""


def _config(pdns: Any) -> str:
    return f"""---
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: ./zones
    default_ttl: 3600
    enforce_order: true
    escaped_semicolons: true
  powerdns:
    class: octodns_powerdns.PowerDnsProvider
    host: {pdns.address}
    port: {pdns.api_port}
    api_key: env/{KEY_ENV}
zones:
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def _repo(tmp_path: Path, pdns: Any, zone: str) -> Path:
    if shutil.which("git") is None:
        from tests.servers.base import require

        require("git", why="octoDNS repository tests (Debian git)")
    repo = tmp_path / "dns"
    (repo / "zones").mkdir(parents=True)
    (repo / "config").mkdir()
    (repo / "config" / "production.yaml").write_text(
        _config(pdns) + f"  {zone}.:\n    sources:\n      - config\n    targets:\n"
                        "      - powerdns\n")
    (repo / "zones" / f"{zone}.yaml").write_text(ZONE_YAML.format(zone=zone))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=op", "-c", "user.email=op@example.test", "commit", "-qm",
         "zones")
    return repo


def _fleet(pdns: Any, zone: str, repo: Path, tmp_path: Path, mode: str) -> Fleet:
    return Fleet.model_validate({
        "store": {"database": f"sqlite:///{tmp_path / 'wt.db'}", "state_dir": str(tmp_path / "state")}, "probe": {"nameservers": [f"{pdns.address}:{pdns.dns_port}"], "authoritative_port": pdns.dns_port, "dns_timeout": 2.0},
        "zones": [{"name": zone, "default_addresses": ["192.0.2.10"],
                   "caa": ["letsencrypt.org"], "octodns": "dns-repo"}],
        "octodns": [{"name": "dns-repo", "config": str(repo / "config" / "production.yaml"),
                     "repo": str(repo), "target": "powerdns", "mode": mode}],
        "mail_domains": [{"name": zone, "mx": [f"mail.{zone}"], "mta_sts": False}],
        "remediation": {"policies": {"dns.records": "auto"}, "settle_seconds": 0},
    })


def _sync(repo: Path, zone: str) -> None:
    """What the operator runs: the real `octodns-sync --doit`, from the work tree."""
    cmd = Path(sys.executable).with_name("octodns-sync")
    proc = subprocess.run([str(cmd), "--config-file", "config/production.yaml", "--doit",
                           f"{zone}."], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _check(fleet: Fleet, store: Store | None = None) -> Any:
    outcome = run_sweep(fleet, store, {"dns.octodns": registry.checks()["dns.octodns"]})
    (result,) = outcome.of("dns.octodns")
    return result


def _served(pdns: Any, zone: str) -> dict[tuple[str, str], list[str]]:
    return {(r["name"], r["type"]): sorted(x["content"] for x in r["records"])
            for r in pdns.get_rrsets(zone) if r["type"] != "SOA"}


@pytest.fixture
def key(powerdns: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, powerdns.api_key)


def _zone(powerdns: Any, tmp_path: Path, zone: str, mode: str) -> tuple[Path, Fleet]:
    powerdns.recreate_zone(zone, [f"ns1.{zone}"])
    repo = _repo(tmp_path, powerdns, zone)
    _sync(repo, zone)
    return repo, _fleet(powerdns, zone, repo, tmp_path, mode)


def test_drift_after_a_hand_change_and_what_the_yaml_lacks(
        powerdns: Any, tmp_path: Path, key: None) -> None:
    zone = "octo-drift.test"
    _repo_dir, fleet = _zone(powerdns, tmp_path, zone, "commit")
    first = _check(fleet)
    assert first.status == Status.FAIL, first.summary  # the YAML has no DMARC record
    assert first.evidence["drift"] == []
    assert [(d["kind"], d["name"]) for d in first.evidence["yaml_lacks"]] == [
        ("missing", f"_dmarc.{zone}.")]
    assert "the fleet needs" in first.summary and "drift:" not in first.summary

    powerdns.replace_rrset(zone, f"mail.{zone}.", "A", 3600, ["192.0.2.99"])  # by hand
    powerdns.replace_rrset(zone, f"www.{zone}.", "A", 300, ["192.0.2.7"])
    result = _check(fleet)
    assert result.status == Status.FAIL
    drift = {(c["action"], c["name"], c["type"]) for c in result.evidence["drift"]}
    assert drift == {("update", f"mail.{zone}.", "A"), ("delete", f"www.{zone}.", "A")}
    assert [c["name"] for c in result.evidence["server_only"]] == [f"www.{zone}."]
    assert f"on the server, not in the YAML: www.{zone}. A 192.0.2.7" in result.summary
    assert "serves 192.0.2.99" in result.summary
    assert [d["name"] for d in result.evidence["yaml_lacks"]] == [f"_dmarc.{zone}."]


def test_missing_dmarc_committed_for_review_then_verified_after_their_sync(
        powerdns: Any, tmp_path: Path, key: None) -> None:
    zone = "octo-commit.test"
    repo, fleet = _zone(powerdns, tmp_path, zone, "commit")
    head = _git(repo, "rev-parse", "HEAD")
    remediator, row, _history = _fixed(fleet)
    plan_diff = row.plan
    assert "+_dmarc:" in plan_diff and "google-site-verification=abc  # not ours" in plan_diff

    # The operator's checkout is untouched; the review branch holds one commit of the file.
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "status", "--porcelain") == ""
    assert _git(repo, "diff", "--name-only", "main", "watchtower/dns").split() == [
        f"zones/{zone}.yaml"]
    committed = _git(repo, "show", f"watchtower/dns:zones/{zone}.yaml")
    assert "# our one mail host" in committed and "  # not ours: must stay" in committed
    assert "v=DMARC1\\; p=reject" in committed
    assert (f"_dmarc.{zone}.", "TXT") not in _served(powerdns, zone)

    assert remediator.verify_pending() == []  # not synced yet: still waiting
    assert remediator.run_auto() == []  # and no second commit for the same fix
    assert _git(repo, "rev-list", "--count", "main..watchtower/dns").strip() == "1"
    _git(repo, "merge", "-q", "--ff-only", "watchtower/dns")
    _sync(repo, zone)
    assert remediator.verify_pending() == [row.id]
    assert remediator.get(row.id or 0).state == "verified"  # type: ignore[union-attr]

    reverted = remediator.revert(row.id or 0, "alice")
    assert reverted.state == "reverted", [a.detail for a in remediator.history(row.id)]
    restored = _git(repo, "show", f"watchtower/dns:zones/{zone}.yaml")
    assert restored == ZONE_YAML.format(zone=zone)
    assert _git(repo, "log", "-1", "--format=%s", "watchtower/dns").startswith('Revert "dns:')


def test_missing_dmarc_committed_and_synced_then_undone(
        powerdns: Any, tmp_path: Path, key: None) -> None:
    zone = "octo-sync.test"
    repo, fleet = _zone(powerdns, tmp_path, zone, "sync")
    before = _served(powerdns, zone)
    remediator, row, history = _fixed(fleet)
    assert [a for a, _ in history if a.startswith("step")] == ["step 1/2", "step 2/2"]
    (served,) = _served(powerdns, zone)[(f"_dmarc.{zone}.", "TXT")]
    assert txt_value(served) == DMARC.format(zone=zone)  # octoDNS writes `\;`: the same TXT
    assert _check(fleet).status == Status.OK
    assert _git(repo, "status", "--porcelain") == ""
    assert "v=DMARC1" in (repo / "zones" / f"{zone}.yaml").read_text()

    assert remediator.revert(row.id or 0, "alice").state == "reverted"
    assert (repo / "zones" / f"{zone}.yaml").read_text() == ZONE_YAML.format(zone=zone)
    assert _served(powerdns, zone) == before
    assert _git(repo, "rev-list", "--count", "HEAD").strip() == "3"  # zones, fix, revert


def _fixed(fleet: Fleet) -> tuple[Remediator, Any, list[tuple[str, str]]]:
    """A sweep finds dns.octodns failing; `run_auto` plans and applies the fix (policy auto)."""
    store = Store(fleet.store.database or "")
    assert _check(fleet, store).status == Status.FAIL
    remediator = Remediator(fleet, store, default_context(fleet, store))
    (row,) = remediator.run_auto()
    history = [(a.action, a.detail) for a in remediator.history(row.id)]
    assert row.state == "applied", history
    return remediator, row, history


def _dns_octodns_failing(zone: str) -> StateRow:
    from watchtower.model import utcnow

    return StateRow(check_id="dns.octodns", target=zone, status=Status.FAIL, summary="",
                    updated_at=utcnow())  # type: ignore[call-arg]


def test_dirty_work_tree_and_broken_yaml_are_refused_with_nothing_changed(
        powerdns: Any, tmp_path: Path, key: None) -> None:
    zone = "octo-refuse.test"
    repo, fleet = _zone(powerdns, tmp_path, zone, "sync")
    remediation = registry.remediations()["dns.records"]()
    store = Store(fleet.store.database or "")
    ctx = default_context(fleet, store)
    served = _served(powerdns, zone)
    zone_file = repo / "zones" / f"{zone}.yaml"

    zone_file.write_text(zone_file.read_text() + "# an edit in progress\n")
    with pytest.raises(Refused, match=r"uncommitted changes .*commit or stash them first"):
        remediation.plan(_dns_octodns_failing(zone), ctx)
    assert zone_file.read_text().endswith("# an edit in progress\n")
    _git(repo, "checkout", "--", ".")

    zone_file.write_text(ZONE_YAML.format(zone=zone).replace("mail:\n", "mail: [\n"))
    _git(repo, "-c", "user.name=op", "-c", "user.email=op@example.test", "commit", "-qam",
         "broken")
    head = _git(repo, "rev-parse", "HEAD")
    with pytest.raises(Refused, match=rf"zones/{zone}.yaml: not valid octoDNS YAML at line"):
        remediation.plan(_dns_octodns_failing(zone), ctx)
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "status", "--porcelain") == ""
    assert _git(repo, "branch", "--list").split() == ["*", "main"]
    assert _served(powerdns, zone) == served

    result = _check(fleet)
    assert result.status == Status.ERROR and "not valid octoDNS YAML" in result.summary


def test_apply_refuses_a_tree_dirtied_after_the_plan_and_a_merge_in_progress(
        powerdns: Any, tmp_path: Path, key: None) -> None:
    from watchtower.remediation.api import Plan, run_action

    zone = "octo-late.test"
    repo, fleet = _zone(powerdns, tmp_path, zone, "sync")
    remediation = registry.remediations()["dns.records"]()
    plan = remediation.plan(_dns_octodns_failing(zone), default_context(
        fleet, Store(fleet.store.database or "")))
    assert isinstance(plan, Plan) and "+_dmarc:" in plan.diff
    zone_file = repo / "zones" / f"{zone}.yaml"
    head = _git(repo, "rev-parse", "HEAD")

    zone_file.write_text(zone_file.read_text() + "# later edit\n")
    outcome = run_action(plan.steps[0])
    assert not outcome.ok and "uncommitted changes" in outcome.output
    assert zone_file.read_text().endswith("# later edit\n")
    _git(repo, "checkout", "--", ".")

    ident = ["-c", "user.name=op", "-c", "user.email=op@example.test"]
    _git(repo, "checkout", "-qb", "other")
    zone_file.write_text(zone_file.read_text().replace("192.0.2.10", "192.0.2.20"))
    _git(repo, *ident, "commit", "-qam", "other")
    _git(repo, "checkout", "-q", "main")
    zone_file.write_text(zone_file.read_text().replace("192.0.2.10", "192.0.2.30"))
    _git(repo, *ident, "commit", "-qam", "main")
    head = _git(repo, "rev-parse", "HEAD")
    subprocess.run(["git", "-C", str(repo), *ident, "merge", "other"], capture_output=True,
                   check=False)  # a conflict: the merge waits for a person
    outcome = run_action(plan.steps[0])
    assert not outcome.ok and "in the middle of a merge" in outcome.output
    assert _git(repo, "rev-parse", "HEAD") == head
