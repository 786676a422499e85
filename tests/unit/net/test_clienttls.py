"""Verifying client contexts are shared by the process while their CA bundle is unchanged:
loading a bundle (certifi's: ~27 ms) per sweep, agent job and mail client was measurable."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
import trustme

from watchtower.net import clienttls


def _bundle(tmp_path: Path, name: str = "ca.pem") -> Path:
    path = tmp_path / name
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_one_context_per_bundle_version_and_purpose(tmp_path: Path) -> None:
    ca = str(_bundle(tmp_path))
    first = clienttls.verifying_context(ca)
    assert clienttls.verifying_context(ca) is first
    assert clienttls.tls_context(ca) is first
    tls12 = clienttls.verifying_context(ca, ssl.TLSVersion.TLSv1_2)
    assert tls12 is not first and tls12.minimum_version is ssl.TLSVersion.TLSv1_2
    https = clienttls.verifying_context(ca, ssl.TLSVersion.TLSv1_2, purpose="https")
    assert https is not tls12  # urllib3 sets ALPN on HTTPS contexts: never shared with mail
    assert first.verify_mode is ssl.CERT_REQUIRED and first.check_hostname


def test_a_changed_bundle_is_loaded_again(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    before = clienttls.verifying_context(str(path))
    trustme.CA().cert_pem.write_to_path(str(path))  # another CA in the same file
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = clienttls.verifying_context(str(path))
    assert after is not before
    assert clienttls.verifying_context(str(path)) is after


def test_a_missing_bundle_still_fails_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        clienttls.verifying_context(str(tmp_path / "absent.pem"))


def test_an_unverified_context_is_never_shared(tmp_path: Path) -> None:
    a = clienttls.tls_context(None, verify=False)
    assert a is not clienttls.tls_context(None, verify=False)
    assert a.verify_mode is ssl.CERT_NONE
