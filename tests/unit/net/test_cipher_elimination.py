"""Cipher-suite elimination (watchtower/net/_sslyze_ciphers.py) against scripted servers: what
it concludes from each pick and refusal, and where it gives way to sslyze's one-by-one plugin.
Real servers (nginx, Postfix) check it against the plugin in tests/integration/tls."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from watchtower.net import _sslyze_ciphers as elimination
from watchtower.net import _sslyze_steps as steps
from watchtower.net import tlshello
from watchtower.net.tlshello import Answer, VersionAnswer
from watchtower.net.tlsscan_result import TlsScan

AES256_13, CHACHA_13, AES128_13 = 0x1302, 0x1303, 0x1301
ECDHE_ECDSA_CHACHA, DHE_RSA_CAMELLIA = 0xCCA9, 0x0045  # modern and legacy build's, TLS 1.2
ECDHE_RSA_AES128_GCM, RSA_AES128 = 0xC02F, 0x002F
X25519_SHARE = struct.pack("!HH", 0x001D, 32) + b"\x00" * 32
#: A ServerKeyExchange naming secp256r1 (RFC 8422 5.4: named_curve, curve id, point).
P256_SKE = b"\x03\x00\x17\x41" + b"\x04" + b"\x00" * 64


def answer(cipher: int, version: str) -> VersionAnswer:
    """What a server that picked `cipher` sends: key share (1.3) or key exchange (below)."""
    found = VersionAnswer(Answer.ACCEPTED, cipher=cipher, compression=0)
    if version == "TLSv1.3":
        found.extensions[51] = X25519_SHARE
    elif cipher in (ECDHE_RSA_AES128_GCM, ECDHE_ECDSA_CHACHA):
        found.server_key_exchange = P256_SKE
    return found


class FakeSession:
    """Records each offer; answers with what the scripted server picks."""

    def __init__(self, server: Callable[[list[int]], VersionAnswer | None],
                 version: str = "TLSv1.3") -> None:
        self.server = server
        self.connections = 0
        self.offers: list[tuple[list[int], tuple[int, ...]]] = []

    def hello(self, version: str, *, suites: list[int], groups: tuple[int, ...],
              want_key: bool) -> VersionAnswer:
        self.connections += 1
        self.offers.append((suites, groups))
        picked = self.server(suites)
        return picked or VersionAnswer(Answer.REFUSED, "alert 40")


def prefers(*accepted: int, version: str = "TLSv1.3"
            ) -> Callable[[list[int]], VersionAnswer | None]:
    """A server that accepts `accepted` and picks the first of them that is offered."""
    def pick(offered: list[int]) -> VersionAnswer | None:
        code = next((c for c in accepted if c in offered), None)
        return None if code is None else answer(code, version)
    return pick


def _accepted(session: FakeSession, version: str) -> list[dict[str, Any]]:
    return elimination.accepted_suites(session, version,  # type: ignore[arg-type]
                                       steps._VERSIONS[version])


def test_every_accepted_suite_is_found_in_one_hello_each_plus_a_refusal() -> None:
    session = FakeSession(prefers(AES256_13, CHACHA_13))
    found = _accepted(session, "TLSv1.3")
    assert [s["name"] for s in found] == ["TLS_CHACHA20_POLY1305_SHA256",
                                          "TLS_AES_256_GCM_SHA384"]
    assert {(s["kex"], s["group"], s["bits"]) for s in found} == {("ECDH", "X25519", 253)}
    assert session.connections == 3


def test_tls12_offers_each_openssl_builds_suites_with_its_groups() -> None:
    session = FakeSession(prefers(ECDHE_ECDSA_CHACHA, DHE_RSA_CAMELLIA, version="TLSv1.2"))
    with pytest.raises(elimination.Unsettled, match="key exchange"):
        _accepted(session, "TLSv1.2")  # the DHE pick came without its ServerKeyExchange
    groups = {g for _, g in session.offers}
    assert groups == {tlshello.MODERN_GROUPS, tlshello.LEGACY_GROUPS}
    modern = next(s for s, g in session.offers if g == tlshello.MODERN_GROUPS)
    legacy = next(s for s, g in session.offers if g == tlshello.LEGACY_GROUPS)
    assert ECDHE_ECDSA_CHACHA in modern and ECDHE_ECDSA_CHACHA not in legacy
    assert DHE_RSA_CAMELLIA in legacy and DHE_RSA_CAMELLIA not in modern


def test_key_exchanges_are_read_from_the_flight() -> None:
    session = FakeSession(prefers(ECDHE_RSA_AES128_GCM, RSA_AES128, version="TLSv1.2"))
    found = {s["openssl"]: s for s in _accepted(session, "TLSv1.2")}
    assert found["ECDHE-RSA-AES128-GCM-SHA256"]["group"] == "secp256r1"
    assert found["ECDHE-RSA-AES128-GCM-SHA256"]["bits"] == 256
    assert found["AES128-SHA"]["kex"] is None  # RSA key transport: no ephemeral key


def test_the_result_is_sorted_as_the_plugin_sorts_it() -> None:
    found = _accepted(FakeSession(prefers(AES128_13, AES256_13)), "TLSv1.3")
    assert [s["name"] for s in found] == sorted((s["name"] for s in found), reverse=True)


@pytest.mark.parametrize("server", [
    lambda offered: answer(AES256_13, "TLSv1.3"),  # picks the same suite again: not offered
    lambda offered: None,  # refuses the long offer of a version it accepts
    lambda offered: VersionAnswer(Answer.ACCEPTED, cipher=AES256_13),  # no key share
])
def test_unsure_answers_give_way_to_one_by_one_testing(
        server: Callable[[list[int]], VersionAnswer | None]) -> None:
    with pytest.raises(elimination.Unsettled):
        _accepted(FakeSession(server), "TLSv1.3")


def test_dh_groups_are_named_by_their_prime() -> None:
    from watchtower.net.tlsgroups import ffdhe_primes

    prime = next(p for p, name in ffdhe_primes().items() if name == "ffdhe3072")
    p = prime.to_bytes(384, "big")
    ske = struct.pack("!H", len(p)) + p + b"\x00\x01\x02" + b"\x00\x01\x05"
    found = VersionAnswer(Answer.ACCEPTED, server_key_exchange=ske)
    assert tlshello.key_exchange(found, "TLSv1.2", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256") == {
        "kex": "DH", "group": "ffdhe3072", "bits": 3072}
    small = (2**1023 + 1).to_bytes(128, "big")
    found.server_key_exchange = struct.pack("!H", 128) + small + b"\x00\x01\x02"
    assert tlshello.key_exchange(found, "TLSv1.2", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256")[
        "group"] == "custom-1024"  # type: ignore[index]
    assert tlshello.key_exchange(found, "TLSv1.2", "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256") is None


def test_the_scan_falls_back_to_the_plugin_and_notes_why() -> None:
    scan = TlsScan("mx.test", 25, "127.0.0.1", "smtp", versions={"TLSv1.3": True})

    class Plugin:
        accepted_cipher_suites: list[Any] = []

    class Session(FakeSession):
        def __init__(self) -> None:
            super().__init__(lambda offered: None)
            self.scan = scan
            self.ran: list[Any] = []

        def run_plugin(self, command: Any) -> Plugin:
            self.ran.append(command)
            return Plugin()

    session = Session()
    steps._ciphers(session)  # type: ignore[arg-type]
    assert session.ran == [steps._CIPHER_COMMANDS["TLSv1.3"]]
    assert scan.ciphers == {"TLSv1.3": []}
    assert "tested one by one" in scan.notes["ciphers TLSv1.3"]
