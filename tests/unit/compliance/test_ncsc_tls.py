"""The NCSC-NL 2025-05 grading tables, internet.nl's status rules and the criteria built on
them, checked against what the guideline and internet.nl say (not against our own output)."""

from __future__ import annotations

import re

import pytest

from tests.servers.base import require, run, tool
from watchtower.compliance import criteria
from watchtower.compliance import frameworks as fw
from watchtower.compliance import ncsc_tls as ncsc
from watchtower.compliance import tls_criteria as tc
from watchtower.compliance.frameworks import InStatus
from watchtower.compliance.ncsc_tls import Level
from watchtower.net import tlsgroups
from watchtower.probe import registry

G, S, P, I = Level.GOOD, Level.SUFFICIENT, Level.PHASE_OUT, Level.INSUFFICIENT  # noqa: E741


@pytest.mark.parametrize("group", ["ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144",
                                   "ffdhe8192"])
def test_rfc7919_primes_match_openssl(group: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    require("openssl", why="OpenSSL's built-in RFC 7919 groups")
    pem = tmp_path / f"{group}.pem"
    run([tool("openssl"), "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
         f"group:{group}", "-out", pem])
    parsed = run([tool("openssl"), "asn1parse", "-in", pem]).stdout
    prime = int(re.findall(r"INTEGER\s*:([0-9A-F]+)", parsed)[0], 16)
    assert tlsgroups.ffdhe_group(prime, 2) == group
    assert tlsgroups.ffdhe_group(prime, 5) is None  # another generator: not the RFC group


@pytest.mark.parametrize(("table", "value", "level"), [
    (ncsc.VERSIONS, "TLSv1.3", G), (ncsc.VERSIONS, "TLSv1.2", S),
    (ncsc.VERSIONS, "TLSv1.1", I), (ncsc.VERSIONS, "TLSv1", I), (ncsc.VERSIONS, "SSLv3", I),
    (ncsc.CIPHERS, "TLS_AES_256_GCM_SHA384", G), (ncsc.CIPHERS, "TLS_AES_128_GCM_SHA256", S),
    (ncsc.CIPHERS, "TLS_AES_128_CCM_8_SHA256", I),
    (ncsc.CIPHERS, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", S),
    (ncsc.CIPHERS, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", P),
    (ncsc.CIPHERS, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", P),
    (ncsc.CIPHERS, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", I),  # SHA-1 MAC
    (ncsc.CIPHERS, "TLS_RSA_WITH_AES_128_GCM_SHA256", I),  # no forward secrecy
    (ncsc.CIPHERS, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", I),
    (ncsc.KEX_GROUPS, "X25519MLKEM768", G), (ncsc.KEX_GROUPS, "X25519", S),
    (ncsc.KEX_GROUPS, "prime256v1", S), (ncsc.KEX_GROUPS, "secp224r1", P),
    (ncsc.KEX_GROUPS, "secp192r1", I),
    (ncsc.FFDHE_GROUPS, "ffdhe3072", P), (ncsc.FFDHE_GROUPS, "ffdhe2048", I),
    (ncsc.FFDHE_GROUPS, "custom-4096", I),
    (ncsc.HASHES, "sha256", G), (ncsc.HASHES, "sha224", P), (ncsc.HASHES, "sha1", I),
    (ncsc.HASHES, "md5", I),
])
def test_tables(table: ncsc.Table, value: str, level: Level) -> None:
    assert table.grade(value) is level


def test_appendix_b_phase_out_list_has_every_suite_once() -> None:
    phase_out = [k for k, v in ncsc.CIPHERS.levels.items() if v is P]
    assert len(phase_out) == len(set(phase_out)) == 35


@pytest.mark.parametrize(("bits", "level"), [(1024, I), (2047, I), (2048, P), (3071, P),
                                             (3072, S), (4096, S)])
def test_rsa_certificate_key_sizes(bits: int, level: Level) -> None:
    assert ncsc.cert_key_level("rsa", bits, None) is level


def test_edition_2025_differs_from_2_1_where_the_issue_says() -> None:
    """2.1 (2021): TLS 1.0/1.1 phase out, RSA-2048 and ffdhe3072 sufficient."""
    assert ncsc.VERSIONS.grade("TLSv1.1") is I
    assert ncsc.rsa_key_level(2048) is P
    assert ncsc.FFDHE_GROUPS.grade("ffdhe3072") is P


@pytest.mark.parametrize(("status", "worst", "shown"), [
    (InStatus.FAILED, InStatus.FAILED, InStatus.FAILED),
    (InStatus.FAILED, InStatus.WARNING, InStatus.WARNING),
    (InStatus.FAILED, InStatus.INFO, InStatus.INFO),
    (InStatus.WARNING, InStatus.INFO, InStatus.INFO),
    (InStatus.PASSED, InStatus.FAILED, InStatus.PASSED),
    (InStatus.NOT_TESTED, InStatus.INFO, InStatus.NOT_TESTED),
])
def test_internetnl_caps_a_status_at_the_requirement_level(status: InStatus, worst: InStatus,
                                                          shown: InStatus) -> None:
    assert status.capped(worst) is shown


def test_worst_of_several_servers() -> None:
    assert InStatus.worst_of([InStatus.PASSED, InStatus.WARNING]) is InStatus.WARNING
    assert InStatus.worst_of([InStatus.NOT_TESTED, InStatus.PASSED]) is InStatus.PASSED
    assert InStatus.worst_of([]) is InStatus.NOT_TESTED


def test_every_mapped_check_exists_and_ids_are_unique() -> None:
    checks = registry.checks()
    for name, tests in fw.FRAMEWORKS.items():
        ids = [t.id for t in tests]
        assert len(ids) == len(set(ids)), name
        assert all(t.id.startswith(name.split()[-1] + "_") for t in tests)
        unknown = {t.check for t in tests if t.check and t.check not in checks}
        assert not unknown, unknown


def test_rpki_is_never_computed() -> None:
    rpki = [t for t in (*fw.WEB, *fw.MAIL) if t.standard is fw.Standard.RPKI]
    assert rpki and all(t.check is None for t in rpki)


def test_the_issue_examples_are_mapped() -> None:
    assert fw.BY_ID["web_https_tls_ciphers"].check == "web.tls.ncsc"
    assert fw.BY_ID["mail_starttls_dane_rollover"].check == "mail.dane"
    assert fw.BY_ID["mail_auth_dmarc_policy"].check == "mail.dmarc.policy"


def _scan(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"versions": {"TLSv1.2": True, "TLSv1.3": True}}
    base.update(kw)
    return base


@pytest.mark.parametrize(("order", "state"), [
    ({"offered": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "chose":
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, "not applicable"),
    ({"offered": ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
      "chose": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, "enforced"),
    ({"offered": ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
      "chose": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"}, "not enforced"),
])
def test_cipher_order(order: dict[str, object], state: str) -> None:
    crit = tc.cipher_order(_scan(cipher_order=order))
    assert crit.level is ncsc.CIPHER_ORDER.grade(state)
    assert (crit.status is InStatus.FAILED) == (state == "not enforced")


@pytest.mark.parametrize(("count", "status"), [(0, InStatus.PASSED), (3, InStatus.INFO),
                                               (11, InStatus.FAILED)])
def test_client_renegotiation(count: int, status: InStatus) -> None:
    crit = tc.client_renegotiation(_scan(client_renegotiations=count))
    assert crit.status is status
    assert criteria.shown_status("web.tls.ncsc", crit) in (InStatus.PASSED, InStatus.INFO)


def test_tls13_only_server_has_nothing_to_renegotiate_or_order() -> None:
    scan = {"versions": {"TLSv1.3": True}}
    for crit in (tc.secure_renegotiation(scan), tc.client_renegotiation(scan),
                 tc.cipher_order(scan), tc.tls_compression(scan), tc.kex_hash(scan)):
        assert crit.status is InStatus.PASSED, crit


@pytest.mark.parametrize(("leaf", "ocsp", "status"), [
    ({"ocsp": []}, {}, InStatus.PASSED),
    ({"ocsp": ["http://ocsp.example/"]}, {"stapled": False}, InStatus.INFO),
    ({"ocsp": ["http://ocsp.example/"]}, {"stapled": True, "valid": True}, InStatus.PASSED),
    ({"ocsp": ["http://ocsp.example/"]}, {"stapled": True, "valid": False}, InStatus.FAILED),
])
def test_ocsp_stapling(leaf: dict[str, object], ocsp: dict[str, object],
                       status: InStatus) -> None:
    assert tc.ocsp_stapling({"ocsp": ocsp}, leaf).status is status


def test_root_certificates_are_not_graded() -> None:
    root = {"subject": "CN=root", "issuer": "CN=root", "key": "rsa-1024", "signature": "rsa",
            "signature_hash": "sha1"}
    leaf = {"subject": "CN=a", "issuer": "CN=root", "key": "ec-256", "curve": "secp256r1",
            "signature": "ecdsa", "signature_hash": "sha256", "names": ["a"]}
    assert tc.cert_pubkey([leaf, root]).level is S
    assert tc.cert_signature([leaf, root]).level is S  # ECDSA sufficient, SHA-256 good
    inter = {**leaf, "subject": "CN=inter", "key": "rsa-2048", "curve": None}
    assert tc.cert_pubkey([leaf, inter, root]).level is P  # every non-root is graded


def test_checks_json_carries_the_mapping(capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from watchtower.cli import main

    assert main(["checks", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_id = {c["id"]: c for c in out["checks"]}
    assert "web_https_tls_ciphers" in {t["id"] for t in by_id["web.tls.ncsc"]["internetnl"]}
    assert by_id["mail.starttls.ncsc"]["pas_toe_of_leg_uit"] == ["STARTTLS and DANE"]
    untested = {t["id"]: t for t in out["internetnl_not_tested"]}
    assert untested["web_rpki_exists"]["standard"] == "RPKI"
    assert untested["web_rpki_exists"]["check"] is None
