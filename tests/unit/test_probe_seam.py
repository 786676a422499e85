"""The probe seam: the sweep's clients and their timeouts, host facts once per host and sweep,
the runner's observation stamp, the mapping from config to net's plain values, and the rules
that keep it whole (checks build no client and read no clock; net/ imports no config)."""

from __future__ import annotations

import ast
import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from watchtower.config import Fleet, Host
from watchtower.errors import ProbeError
from watchtower.inventory import nixos
from watchtower.model import Status, Target, TargetKind, Verdict
from watchtower.net import powerdns
from watchtower.probe.api import OBSERVED_AT, Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.clients import DnsApis, Hosts, SweepClients, host_access
from watchtower.probe.runner import Job, execute

ROOT = Path(__file__).resolve().parents[2]
TIMEOUTS = {"dns_timeout": 1.5, "http_timeout": 2.5, "tls_timeout": 3.5, "smtp_timeout": 4.5,
            "imap_timeout": 5.5, "sieve_timeout": 6.5, "s3_timeout": 7.5, "ssh_timeout": 8.5,
            "dns_api_timeout": 9.5}


def _fleet(**extra: Any) -> Fleet:
    return Fleet.model_validate({"probe": {"nameservers": ["127.0.0.1:9"], **TIMEOUTS},
                                 **extra})


def test_every_client_is_on_the_context_with_its_own_timeout() -> None:
    with SweepClients(_fleet()) as clients:
        ctx = clients.context(0.0)
        assert ctx.dns.timeout == 1.5
        assert ctx.http.timeout == 2.5
        assert ctx.tls.timeout == 3.5 and ctx.tls_scan.timeout == 3.5
        assert ctx.smtp.prober.scanner is ctx.tls_scan  # MX legacy versions from the scan
        assert ctx.smtp.timeout == 4.5 and ctx.smtp.prober.timeout == 4.5
        assert ctx.imap.timeout == 5.5
        assert ctx.sieve.timeout == 6.5
        assert ctx.s3.timeout == 7.5
        assert ctx.hosts.timeout == 8.5
        assert ctx.dns_api.timeout == 9.5
        session = ctx.imap.session("mail.test", "127.0.0.1", 993, "implicit", None)
        assert session.timeout == 5.5 and session.ca_bundle == ctx.tls.ca_bundle
        sub = ctx.smtp.submission("mail.test", "127.0.0.1", 587, "starttls", None)
        assert sub.timeout == 4.5 and sub.helo == ctx.smtp.helo
        client = ctx.s3.client("http://127.0.0.1:9", "garage", "a", "b", deadline=None)
        assert client.timeout == 7.5 and client.http is ctx.http


class Stamped(Check):
    meta = CheckMeta("test.stamped", "test", "t", (TargetKind.ZONE,))

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return {"x": 1}

    def judge(self, facts: Facts) -> Verdict:
        return Verdict(Status.OK, f"observed {observed_at(facts):%Y-%m-%d}")

    def evidence(self, facts: Facts) -> dict[str, Any]:
        return {"x": facts["x"]}  # keeps less than the facts: the stamp is added anyway


def test_the_runner_stamps_the_observation_into_facts_and_evidence() -> None:
    with SweepClients(_fleet()) as clients:
        result = execute(Job(Stamped(), Target(TargetKind.ZONE, "a.test"), 5.0),
                         clients.context(10.0 ** 9))
    assert result.evidence == {"x": 1, OBSERVED_AT: result.at.isoformat()}
    assert result.summary == f"observed {result.at:%Y-%m-%d}"
    assert result.at.tzinfo is not None and result.at.utcoffset() == dt.timedelta(0)


def test_observed_at_reads_the_stamp_and_refuses_a_missing_one() -> None:
    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert observed_at({OBSERVED_AT: when.isoformat()}) == when
    assert observed_at({OBSERVED_AT: when}) == when
    for bad in ({}, {OBSERVED_AT: "yesterday"}, {OBSERVED_AT: 3}):
        with pytest.raises(ValueError, match=OBSERVED_AT):
            observed_at(bad)


def _nixos_host(tmp_path: Path) -> Host:
    system = tmp_path / "system"
    (system / "kernel").mkdir(parents=True)
    (system / "nixos-version").write_text("26.05\n")
    os.symlink(system, tmp_path / "current-system")
    store = tmp_path / "nix-store"
    store.write_text(f'#!/bin/sh\necho run >> "{tmp_path}/closures"\necho /nix/store/a-x\n')
    store.chmod(0o755)
    return Host(name="web1", current_system=str(tmp_path / "current-system"),
                booted_system=str(tmp_path / "booted-system"),
                profile=str(tmp_path / "profile"), nix_store=str(store))


def test_system_state_and_closures_are_asked_once_per_host_and_sweep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = _nixos_host(tmp_path)
    calls: list[str] = []
    real = nixos.system_state

    def counting(*args: Any) -> dict[str, Any]:
        calls.append(args[1].name)
        return real(*args)

    monkeypatch.setattr(nixos, "system_state", counting)
    hosts = Hosts(10.0)
    states: list[dict[str, Any]] = []
    # The four drift checks of one host, at once.
    threads = [threading.Thread(target=lambda: states.append(hosts.system_state(host, None)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["web1"] and len(states) == 4
    assert states[0]["current"] == str(tmp_path / "system")
    states[0]["current"] = "changed by one check"  # each asker gets its own copy
    assert hosts.system_state(host, None)["current"] == str(tmp_path / "system")
    for _ in range(3):
        assert hosts.closure(host, str(tmp_path / "system"), None) == ["/nix/store/a-x"]
    assert (tmp_path / "closures").read_text() == "run\n"
    assert hosts.transport(host) is hosts.transport(host)
    hosts.close()
    # A new sweep asks again.
    Hosts(10.0).system_state(host, None)
    assert calls == ["web1", "web1"]


def test_a_failed_host_fact_is_asked_again(tmp_path: Path) -> None:
    host = Host(name="gone", current_system=str(tmp_path / "nothing"))
    hosts = Hosts(10.0)
    for _ in range(2):
        with pytest.raises(ProbeError, match="not a NixOS system"):
            hosts.system_state(host, None)
    (tmp_path / "nothing").mkdir()
    assert hosts.system_state(host, None)["current"] == str(tmp_path / "nothing")
    hosts.close()


def test_host_access_maps_the_entry_and_reads_a_key_only_for_ssh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_TEST_SSH_KEY", "-----BEGIN KEY-----\nabc\n")
    local = Host(name="here", env={"A": "1"}, ssh_key={"$env": "WT_UNSET_KEY"})
    assert host_access(local).ssh is None and host_access(local).key_text is None
    by_env = Host(name="web1", ssh="root@web1:2222", known_hosts="/kh",
                  ssh_key={"$env": "WT_TEST_SSH_KEY"}, connect_timeout=3)
    access = host_access(by_env)
    assert (access.ssh, access.known_hosts, access.connect_timeout) == ("root@web1:2222",
                                                                       "/kh", 3)
    assert access.key_text is not None and access.key_file is None
    assert "abc" not in repr(access)
    by_file = Host(name="web2", ssh="root@web2", known_hosts="/kh",
                   ssh_key={"$file": str(tmp_path / "key")})
    assert host_access(by_file).key_file == str(tmp_path / "key")
    unreadable = Host(name="web3", ssh="root@web3", known_hosts="/kh",
                      ssh_key={"$env": "WT_UNSET_KEY"})
    with pytest.raises(ProbeError, match="hosts web3: ssh_key") as caught:
        host_access(unreadable)
    assert caught.value.kind == "config"


def test_dns_apis_choose_by_zone_and_read_the_key_when_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = _fleet(dns_apis=[
        {"name": "outer", "url": "http://127.0.0.1:9", "api_key": {"$env": "WT_PDNS_KEY"},
         "zones": ["example.test"]},
        {"name": "inner", "url": "http://127.0.0.1:9", "api_key": {"$env": "WT_PDNS_KEY"},
         "zones": ["sub.example.test"]}])
    apis = DnsApis(fleet.dns_apis, fleet.probe.dns_api_timeout)
    with pytest.raises(ProbeError, match="dns_apis outer: api_key"):
        apis.for_zone("example.test")  # the key is read now, not at sweep start
    monkeypatch.setenv("WT_PDNS_KEY", "s3cret")
    inner = apis.for_zone("sub.example.test")
    assert inner is not None and inner.name == "inner"
    assert inner.endpoint.timeout == 9.5 and "s3cret" not in repr(inner.endpoint)
    found = apis.for_name("www.example.test")
    assert found is not None and (found[0].name, found[1]) == ("outer", "example.test")
    assert apis.for_zone("other.test") is None and apis.named("nope") is None


def test_an_api_request_that_gets_no_answer_is_a_probe_error() -> None:
    with pytest.raises(ProbeError) as caught:
        powerdns.request("PATCH", "http://127.0.0.1:9/api", body={}, api_key="k", timeout=2)
    assert caught.value.kind == "api" and "k" not in caught.value.reason.split()


# -- the rules --------------------------------------------------------------------------------

#: Constructors and openers of network clients: only watchtower/probe/clients.py (and net/
#: itself) call them; a check takes its clients from the probe context.
CLIENT_BUILDERS = {"Resolver", "HttpClient", "TlsProber", "SmtpProber", "SmtpClient",
                   "StartTlsDialogue", "SubmissionSession", "ImapSession", "ImapStartTls",
                   "ImapClient", "ManageSieveSession", "ManageSieveClient", "S3Client",
                   "S3Clients", "TlsScanner", "PowerDnsApi", "LocalTransport", "SshTransport",
                   "open_transport", "open_host", "create_connection"}
CLOCK_READS = {"utcnow", "now", "today"}


def _calls(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else ""
            out.append((node.lineno, name))
    return out


def _check_modules() -> list[Path]:
    return sorted((ROOT / "checks").rglob("*.py"))


def test_no_check_builds_a_client() -> None:
    found = [f"{p.relative_to(ROOT)}:{line} {name}" for p in _check_modules()
             for line, name in _calls(p) if name in CLIENT_BUILDERS]
    assert not found
    assert not [p for p in _check_modules() if "import requests" in p.read_text()]


def test_no_check_reads_the_date_from_the_clock() -> None:
    """Judgements read observed_at(facts); a gather that needs a wall-clock value (a probe
    token, a rotation index) uses time.time(), which is not a date and cannot leak into a
    judgement's notion of "now" unnoticed."""
    found = [f"{p.relative_to(ROOT)}:{line} {name}" for p in _check_modules()
             for line, name in _calls(p) if name in CLOCK_READS]
    assert not found


def test_net_takes_plain_values() -> None:
    """Nothing in watchtower/net imports the fleet-file models: the probe's clients map them."""
    found = []
    for path in sorted((ROOT / "watchtower" / "net").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "watchtower.config"):
                found.append(f"{path.name}: {node.module}")
            elif isinstance(node, ast.Import):
                found += [f"{path.name}: {a.name}" for a in node.names
                          if a.name.startswith("watchtower.config")]
    assert not found
