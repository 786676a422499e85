"""What one full TLS scan found (`TlsScan`), and the constants and sslyze configuration helper
that the scanner (watchtower/net/tlsscan.py) and its sslyze steps (watchtower/net/_sslyze_steps.py)
share. Apart from both so that neither imports the other: the scanner loads the steps, and
with them sslyze, only on first use."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Client-initiated renegotiations attempted: one more than the guideline's "limited" (10).
RENEGOTIATION_ATTEMPTS = 11
VERSION_NAMES = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(slots=True)
class TlsScan:
    """What a full scan found. `None` means "not tested" (the reason is in `untested`)."""

    host: str
    port: int
    address: str
    starttls: str | None
    versions: dict[str, bool] = field(default_factory=dict)
    ciphers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cipher_order: dict[str, Any] = field(default_factory=dict)
    kex_hash: str | None = None
    compression: bool | None = None
    secure_renegotiation: bool | None = None
    client_renegotiations: int | None = None
    early_data: bool | None = None
    extended_master_secret: bool | None = None
    ocsp: dict[str, Any] = field(default_factory=dict)
    #: The chain as sent (CertFacts evidence, leaf first): at the lowest accepted version that
    #: sends it in the clear, else in a TLS 1.3 handshake (read by the full scan only).
    chain: list[dict[str, Any]] = field(default_factory=list)
    #: The same chain as the version probe received it (DER), before the full scan parses it.
    chain_der: list[bytes] = field(default_factory=list)
    #: Per TLS version from 1.0 to 1.2 whose hello was accepted: whether the ServerHello
    #: carried renegotiation_info (RFC 5746 3.6), the server's "secure renegotiation".
    renegotiation_info: dict[str, bool] = field(default_factory=dict)
    untested: dict[str, str] = field(default_factory=dict)
    #: How a step went where it matters to the scan's cost, not to its grade (logged, not
    #: evidence): e.g. why cipher suites were tested one by one rather than by elimination.
    notes: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    cpu_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    def evidence(self) -> dict[str, Any]:
        """The JSON facts the criteria are graded on (timings left out on purpose)."""
        return {
            "endpoint": f"{self.host}:{self.port}", "address": self.address,
            "starttls": self.starttls, "versions": self.versions, "ciphers": self.ciphers,
            "cipher_order": self.cipher_order, "kex_hash": self.kex_hash,
            "compression": self.compression, "secure_renegotiation": self.secure_renegotiation,
            "client_renegotiations": self.client_renegotiations, "early_data": self.early_data,
            "extended_master_secret": self.extended_master_secret, "ocsp": self.ocsp,
            "chain": self.chain, "untested": self.untested,
        }


def with_timeout(config: Any, seconds: float) -> Any:
    """sslyze's network configuration with this connection's timeout (whole seconds, >= 1)."""
    return dataclasses.replace(config, network_timeout=max(1, int(seconds)))

