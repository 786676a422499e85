"""The lab mail host the unit tests of its faces drive: one per test module, with a probe
mailbox, a signing key, a test CA and a Sieve script store (so ManageSieve runs too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from watchtower.lab.ca import LabCA
from watchtower.lab.mailhost import LabMailHost, MailHostConfig
from watchtower.lab.sieve import ScriptStore

USER = "probe@lab.test"
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def lab_mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabMailHost, str]]:
    """A started lab mail host for mail.lab.test and the path of the CA that signed it."""
    d: Path = tmp_path_factory.mktemp("labmail")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    ca = LabCA(d / "ca")
    issued = ca.issue(["mail.lab.test"])
    config = MailHostConfig("mail.lab.test", {"lab.test"}, {USER: PASSWORD}, d / "maildir",
                            pem, sieve=ScriptStore(d / "sieve"))
    with LabMailHost(config, str(issued.cert_path), str(issued.key_path)) as host:
        yield host, str(ca.cert_path)
