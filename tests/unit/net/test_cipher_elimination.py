"""Cipher-suite elimination (watchtower/net/_sslyze_ciphers.py) against scripted servers: what
it concludes from each pick and refusal, and where it gives way to sslyze's one-by-one plugin.
Real servers (nginx, Postfix) check it against the plugin in tests/integration/tls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from nassl.ssl_client import SslClient
from sslyze.errors import ServerRejectedTlsHandshake, ServerTlsConfigurationNotSupported
from sslyze.server_connectivity import ServerNetworkConfiguration, ServerNetworkLocation

from watchtower.net import _sslyze_ciphers as elimination
from watchtower.net import _sslyze_steps as steps
from watchtower.net.tlsscan_result import TlsScan

LOCATION = ServerNetworkLocation(hostname="mx.test", port=25, ip_address="127.0.0.1")
CONFIG = ServerNetworkConfiguration(tls_server_name_indication="mx.test")


class FakeClient(SslClient):  # type: ignore[misc]
    """Records the offered list; negotiates what the scripted server picks."""

    def __init__(self) -> None:  # no OpenSSL context: nothing here touches one
        self.offered: list[str] = []
        self.chosen: str | None = None

    def set_cipher_list(self, names: str) -> None:
        self.offered = names.split(":")

    def set_ciphersuites(self, names: str) -> None:
        self.offered = names.split(":")

    def get_current_cipher_name(self) -> str | None:
        return self.chosen

    def get_ephemeral_key(self) -> None:
        return None


class FakeConnection:
    def __init__(self, server: Callable[[list[str]], str | None]) -> None:
        self.ssl_client = FakeClient()
        self.server = server

    def connect(self, should_retry_connection: bool = True) -> None:
        picked = self.server(self.ssl_client.offered)
        if picked is None:
            raise ServerRejectedTlsHandshake(server_location=LOCATION,
                                             network_configuration=CONFIG,
                                             error_message="handshake failure")
        if picked == "DH-TOO-SMALL":
            raise ServerTlsConfigurationNotSupported(server_location=LOCATION,
                                                     network_configuration=CONFIG,
                                                     error_message="DH key too small")
        self.ssl_client.chosen = picked

    def close(self) -> None:
        pass


class FakeSession:
    def __init__(self, server: Callable[[list[str]], str | None]) -> None:
        self.server = server
        self.connections = 0

    def connection(self, version: str, *, legacy: bool | None = None) -> FakeConnection:
        self.connections += 1
        return FakeConnection(self.server)


def prefers(*accepted: str) -> Callable[[list[str]], str | None]:
    """A server that accepts `accepted` and picks the first of them that is offered."""
    return lambda offered: next((name for name in accepted if name in offered), None)


def names(found: list[Any]) -> list[str]:
    return [s.cipher_suite.openssl_name for s in found]


def test_every_accepted_suite_is_found_in_one_handshake_each_plus_a_refusal() -> None:
    accepted = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
    session = FakeSession(prefers(*accepted))
    found = elimination.accepted_suites(session, "TLSv1.3", steps._VERSIONS["TLSv1.3"])  # type: ignore[arg-type]
    assert sorted(names(found)) == sorted(accepted)
    assert session.connections == len(accepted) + 1


def test_tls12_asks_each_openssl_build_for_its_own_suites() -> None:
    modern, legacy = "ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-CAMELLIA128-SHA"
    session = FakeSession(prefers(modern, legacy))
    found = elimination.accepted_suites(session, "TLSv1.2", steps._VERSIONS["TLSv1.2"])  # type: ignore[arg-type]
    assert sorted(names(found)) == sorted([modern, legacy])
    assert session.connections == 4  # one pick and one refusal per build


def test_the_result_is_sorted_as_the_plugin_sorts_it() -> None:
    session = FakeSession(prefers("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"))
    found = elimination.accepted_suites(session, "TLSv1.3", steps._VERSIONS["TLSv1.3"])  # type: ignore[arg-type]
    assert [s.cipher_suite.name for s in found] == sorted(
        (s.cipher_suite.name for s in found), reverse=True)


@pytest.mark.parametrize("server", [
    lambda offered: "TLS_AES_256_GCM_SHA384",  # picks the same suite again: not offered
    lambda offered: "DH-TOO-SMALL",  # accepted, but which suite cannot be told
    lambda offered: None,  # refuses the long offer of a version it accepts
])
def test_unsure_answers_give_way_to_one_by_one_testing(
        server: Callable[[list[str]], str | None]) -> None:
    with pytest.raises(elimination.Unsettled):
        elimination.accepted_suites(FakeSession(server), "TLSv1.3",  # type: ignore[arg-type]
                                    steps._VERSIONS["TLSv1.3"])


def test_the_scan_falls_back_to_the_plugin_and_notes_why(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    scan = TlsScan("mx.test", 25, "127.0.0.1", "smtp", versions={"TLSv1.3": True})

    class Plugin:
        accepted_cipher_suites: list[Any] = []

    class Session(FakeSession):
        def __init__(self) -> None:
            super().__init__(lambda offered: "DH-TOO-SMALL")
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
