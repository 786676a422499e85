"""Smoke tests proving each harness server really serves what the other tests rely on.

One test (or a few) per server, each doing the thing real tests will do: a signed DNS answer,
a SQL round trip across a restart, a scrape and a firing alert, an SSH command and a refusal,
NixOS generations and rollback, a DKIM-signed mail from submission to IMAPS, the Matrix
federation version, an S3 object round trip.
"""

from __future__ import annotations

import imaplib
import os
import signal
import smtplib
import ssl
import time
from email.message import EmailMessage
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.servers.base import ManagedProcess, ServerError, free_port, require
from tests.servers.mailstack import MailStack
from tests.servers.nixstore import NixStore
from tests.servers.openssh import SSHServer
from tests.servers.plugin import PrometheusFactory
from tests.servers.postgres import PostgreSQL
from tests.servers.powerdns import PowerDNS, txt
from tests.servers.prometheus import PromTools
from tests.servers.s3 import S3Server
from tests.servers.synapse import Synapse

# ---------------------------------------------------------------------------------------------
# the harness itself (no server needed)


def test_require_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.servers.base as base

    real = base.find_tool
    monkeypatch.setattr(base, "find_tool", lambda t: None if t == "pdns_server" else real(t))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pdns_server"):
        require("sh", "pdns_server", why="demo")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"pdns_server \(Debian package pdns-server\)"):
        require("sh", "pdns_server", why="demo")
    require("sh", why="present tools pass")


def test_managed_process_reports_log_tail_and_kills_stubborn(tmp_path: Path) -> None:
    failing = ManagedProcess(
        ["/bin/sh", "-c", "echo boom-from-server >&2; exit 3"], name="failing", logdir=tmp_path
    ).start()
    with pytest.raises(ServerError, match="boom-from-server"):
        failing.wait_ready(lambda: False, timeout=5)

    stubborn = ManagedProcess(
        ["/bin/sh", "-c", "trap '' TERM; echo trapped; sleep 60"],
        name="stubborn",
        logdir=tmp_path,
        grace=0.5,
    ).start()
    stubborn.wait_ready(lambda: "trapped" in stubborn.stdout_path.read_text(), timeout=5)
    t0 = time.monotonic()
    code = stubborn.stop()
    assert code == -signal.SIGKILL
    assert time.monotonic() - t0 < 5
    assert not stubborn.running


def test_free_port_is_bindable_and_unique() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert all(1024 < p < 65536 for p in ports)


# ---------------------------------------------------------------------------------------------
# PowerDNS


def _ask(server: PowerDNS, qname: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(qname, rdtype, want_dnssec=True)
    return dns.query.udp(query, server.address, port=server.dns_port, timeout=3)


@pytest.mark.integration
def test_powerdns_signed_zone_via_api(powerdns: PowerDNS, powerdns2: PowerDNS) -> None:
    zone = "harness-smoke.test."
    records = [
        ("@", "A", 300, "192.0.2.10"),
        ("www", "A", 300, "192.0.2.11"),
        ("@", "TXT", 300, txt("v=spf1 -all")),
    ]
    try:
        for server in (powerdns, powerdns2):
            server.create_zone(
                zone, ["ns1.harness-smoke.test.", "ns2.harness-smoke.test."], records, dnssec=True
            )

        answer = _ask(powerdns, f"www.{zone}", "A")
        assert answer.flags & dns.flags.AA
        types = {rrset.rdtype for rrset in answer.answer}
        assert types == {dns.rdatatype.A, dns.rdatatype.RRSIG}
        assert "192.0.2.11" in answer.to_text()

        # The second instance answers on its own address with its own keys.
        assert powerdns2.address == "127.0.0.2"
        other = _ask(powerdns2, zone, "TXT")
        assert '"v=spf1 -all"' in other.to_text()
        assert any(r.rdtype == dns.rdatatype.RRSIG for r in other.answer)
        assert powerdns.export_ds(zone) != powerdns2.export_ds(zone)
        assert powerdns.export_ds(zone)[0].startswith(f"{zone} IN DS ")

        # A change through the API is visible to the very next query (no caches).
        powerdns.replace_rrset(zone, "www", "A", 60, ["192.0.2.99"])
        assert "192.0.2.99" in _ask(powerdns, f"www.{zone}", "A").to_text()
        assert any(r["name"] == f"www.{zone}" for r in powerdns.get_rrsets(zone))
        powerdns.delete_rrset(zone, "www", "A")
        assert _ask(powerdns, f"www.{zone}", "A").answer == []

        # NSEC3 through pdnsutil shows up after the purge secure/set_nsec3 do.
        powerdns2.set_nsec3(zone)
        nx = _ask(powerdns2, f"nx.{zone}", "A")
        assert any(r.rdtype == dns.rdatatype.NSEC3 for r in nx.authority)
    finally:
        for server in (powerdns, powerdns2):
            if zone in server.list_zones():
                server.delete_zone(zone)


@pytest.mark.integration
def test_powerdns_secure_existing_zone(powerdns: PowerDNS) -> None:
    zone = "harness-late.test."
    powerdns.create_zone(zone, ["ns1.harness-late.test."], [("@", "A", 300, "192.0.2.1")])
    try:
        assert not any(r.rdtype == dns.rdatatype.RRSIG for r in _ask(powerdns, zone, "A").answer)
        powerdns.secure_zone(zone)
        assert any(r.rdtype == dns.rdatatype.RRSIG for r in _ask(powerdns, zone, "A").answer)
        assert powerdns.export_ds(zone)
    finally:
        powerdns.delete_zone(zone)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@pytest.mark.integration
def test_postgres_survives_restart(postgres: PostgreSQL) -> None:
    psycopg = pytest.importorskip("psycopg")
    assert postgres.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    with psycopg.connect(postgres.libpq_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS harness_smoke (v text)")
        conn.execute("INSERT INTO harness_smoke VALUES ('before restart')")

    postgres.restart()

    with psycopg.connect(postgres.libpq_url, autocommit=True) as conn:
        rows = conn.execute("SELECT v FROM harness_smoke").fetchall()
        conn.execute("DROP TABLE harness_smoke")
    assert ("before restart",) in rows
    assert postgres.running


# ---------------------------------------------------------------------------------------------
# Prometheus


RULES = """\
groups:
  - name: harness
    rules:
      - alert: HarnessAlwaysFiring
        expr: vector(1)
        for: 0s
        labels: {severity: info}
        annotations: {summary: proves rule evaluation works}
"""

RULE_TEST = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series: []
    alert_rule_test:
      - eval_time: 1m
        alertname: HarnessAlwaysFiring
        exp_alerts:
          - exp_labels: {severity: info}
            exp_annotations: {summary: proves rule evaluation works}
"""


@pytest.mark.integration
def test_prometheus_scrapes_and_fires(
    prometheus_factory: PrometheusFactory,
    prometheus_tools: PromTools,
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    (tmp_path / "rules_test.yml").write_text(RULE_TEST)
    assert prometheus_tools.check_rules(rules)[0] == 0
    rc, out = prometheus_tools.test_rules(tmp_path / "rules_test.yml")
    assert rc == 0, out

    port = free_port()
    prom = prometheus_factory([f"127.0.0.1:{port}"], [rules], port=port)  # scrapes itself
    assert prom.wait_for(lambda: prom.query_value("up") == 1.0, timeout=20)
    assert prom.wait_for(lambda: "HarnessAlwaysFiring" in prom.firing(), timeout=20)
    prom.stop()


@pytest.mark.integration
def test_promtool_check_metrics(prometheus_tools: PromTools) -> None:
    good = (
        "# HELP watchtower_checks_total Checks run.\n# TYPE watchtower_checks_total counter\n"
        "watchtower_checks_total 3\n"
    )
    assert prometheus_tools.check_metrics(good) == (0, "")
    rc, out = prometheus_tools.check_metrics("watchtower_checks 3\n")
    assert rc != 0 and "no help text" in out


# ---------------------------------------------------------------------------------------------
# OpenSSH


@pytest.mark.integration
def test_sshd_runs_command_and_refuses_other_key(sshd: SSHServer) -> None:
    ok = sshd.ssh("true")
    assert ok.returncode == 0, ok.stderr
    assert sshd.ssh("echo", "hello").stdout.strip() == "hello"
    assert sshd.known_hosts.read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")

    refused = sshd.ssh("true", key=sshd.other_key)
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr

    argv = sshd.ssh_argv("true")
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv


# ---------------------------------------------------------------------------------------------
# Nix


@pytest.mark.integration
def test_nix_generations_and_rollback(nix_store: NixStore) -> None:
    t0 = time.monotonic()
    first = nix_store.build_system("smoke-1")
    g1 = nix_store.set_generation(first)
    assert time.monotonic() - t0 < 5  # typically ~0.15 s
    second = nix_store.build_system("smoke-2", {"mastodon": "4.3.3"}, kernel="6.6.2")
    g2 = nix_store.set_generation(second)
    assert g2 == g1 + 1
    assert nix_store.current_system() == second

    closure = nix_store.requisites(second)
    assert any(p.endswith("-mastodon-4.3.3") for p in closure)
    assert any(p.endswith("-linux-6.6.2") for p in closure)
    assert os.readlink(Path(second) / "kernel").endswith("-linux-6.6.2/bzImage")
    assert (Path(second) / "nixos-version").read_text() == "24.05.smoke-2"
    assert [g.number for g in nix_store.list_generations() if g.current] == [g2]

    assert nix_store.rollback() == g1
    assert nix_store.current_system() == first
    nix_store.switch_generation(g2)
    assert nix_store.current_generation() == g2

    result = nix_store.switch_to_configuration("switch")
    assert result.returncode == 0, result.stderr
    assert nix_store.switch_log_lines()[-1] == f"switch {second}"

    info = nix_store.nix("path-info", "--json", second)
    assert info.returncode == 0 and second in info.stdout


# ---------------------------------------------------------------------------------------------
# mail stack


def _message(stack: MailStack, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = stack.address
    msg["To"] = stack.address
    msg["Subject"] = subject
    msg.set_content("harness smoke test\n")
    return msg


@pytest.mark.integration
def test_mail_submission_imaps_and_dkim(mail_stack: MailStack) -> None:
    mail_stack.clear_inbox()
    ctx = ssl.create_default_context(cafile=str(mail_stack.ca_pem_path))

    with smtplib.SMTP(mail_stack.host, mail_stack.submission_port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        code, _ = smtp.mail(mail_stack.address)
        assert code == 530  # submission demands TLS first
        smtp.rset()
        smtp.starttls(context=ctx)
        smtp.ehlo()
        assert "PLAIN" in smtp.esmtp_features.get("auth", "")
        smtp.login(mail_stack.user, mail_stack.password)
        smtp.send_message(_message(mail_stack, "harness smoke"))

    deadline = time.monotonic() + 15
    raw = b""
    while not raw and time.monotonic() < deadline:
        with imaplib.IMAP4_SSL(mail_stack.host, mail_stack.imaps_port, ssl_context=ctx) as imap:
            imap.login(mail_stack.user, mail_stack.password)
            imap.select("INBOX")
            _, ids = imap.search(None, "SUBJECT", '"harness smoke"')
            if ids[0]:
                _, parts = imap.fetch(ids[0].split()[-1], "(RFC822)")
                first = parts[0]
                assert isinstance(first, tuple)
                raw = first[1]
        time.sleep(0.05)
    assert raw, "message never reached the IMAP inbox"
    headers = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "DKIM-Signature:" in headers
    assert f"d={mail_stack.dkim_domain};" in headers and f"s={mail_stack.dkim_selector};" in headers
    assert mail_stack.dkim_txt_record.startswith("v=DKIM1;") and "p=" in mail_stack.dkim_txt_record


@pytest.mark.integration
def test_mail_smtps_mx_and_open_relay(mail_stack: MailStack) -> None:
    ctx = ssl.create_default_context(cafile=str(mail_stack.ca_pem_path))
    with smtplib.SMTP_SSL(mail_stack.host, mail_stack.smtps_port, context=ctx, timeout=30) as smtp:
        smtp.login(mail_stack.user, mail_stack.password)

    assert mail_stack.mx_port and mail_stack.open_relay_port
    with smtplib.SMTP(mail_stack.host, mail_stack.mx_port, timeout=30) as mx:
        mx.ehlo("probe.example")
        assert mx.has_extn("starttls") and not mx.has_extn("auth")
        mx.starttls(context=ctx)
        mx.ehlo("probe.example")
        mx.mail("someone@elsewhere.example")
        code, _ = mx.rcpt("victim@elsewhere.example")
        assert code == 554  # relay access denied
        code, _ = mx.rcpt(mail_stack.address)
        assert code == 250  # but mail for the hosted domain is welcome
        mx.rset()

    with smtplib.SMTP(mail_stack.host, mail_stack.open_relay_port, timeout=30) as relay:
        relay.ehlo("probe.example")
        relay.mail("someone@elsewhere.example")
        code, _ = relay.rcpt("victim@elsewhere.example")
        assert code == 250  # the deliberately open relay
        relay.rset()


@pytest.mark.integration
def test_mail_opendkim_down_means_tempfail(mail_stack: MailStack) -> None:
    mail_stack.stop_opendkim()
    try:
        with pytest.raises(smtplib.SMTPResponseException) as err:
            mail_stack.submit(_message(mail_stack, "unsigned?").as_bytes())
        assert 400 <= err.value.smtp_code < 500  # tempfail: never accepted unsigned
    finally:
        mail_stack.start_opendkim()
    mail_stack.submit(_message(mail_stack, "signed again").as_bytes())


# ---------------------------------------------------------------------------------------------
# Synapse and S3


@pytest.mark.integration
def test_synapse_federation_version(synapse: Synapse) -> None:
    version = synapse.federation_version()
    assert version["server"]["name"] == "Synapse"
    import requests

    keys = requests.get(f"{synapse.url}/_matrix/key/v2/server", timeout=10).json()
    assert keys["server_name"] == synapse.server_name


@pytest.mark.integration
def test_s3_round_trip(s3_server: S3Server) -> None:
    s3_server.reset()
    s3 = s3_server.client()
    s3.create_bucket(Bucket="harness-media")
    s3.put_object(Bucket="harness-media", Key="a/b.txt", Body=b"fediverse media")
    assert s3.get_object(Bucket="harness-media", Key="a/b.txt")["Body"].read() == b"fediverse media"
    s3.delete_object(Bucket="harness-media", Key="a/b.txt")
    assert s3.list_objects_v2(Bucket="harness-media").get("KeyCount") == 0
    s3_server.reset()
    assert s3.list_buckets()["Buckets"] == []
