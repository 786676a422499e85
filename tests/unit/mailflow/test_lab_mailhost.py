"""The lab's pure-Python mail host (submission + IMAPS over a Maildir), driven through the same
network seams the mail-flow checks use: SubmissionSession and ImapSession."""

from __future__ import annotations

import smtplib
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from watchtower.checks.mail.roundtrip import PROBE_HEADER, probe_message

from watchtower.lab.ca import LabCA
from watchtower.lab.mailhost import LabMailHost
from watchtower.net.imap import ImapError, ImapSession
from watchtower.net.submission import SubmissionRefused, SubmissionSession

from .conftest import PASSWORD, USER


def _submission(host: LabMailHost, ca: str, implicit: bool = False) -> SubmissionSession:
    port = host.submissions_port if implicit else host.submission_port
    return SubmissionSession("mail.lab.test", "127.0.0.1", port,
                             "implicit" if implicit else "starttls", "test.local", None,
                             ca_bundle=ca, timeout=5)


def _imap(host: LabMailHost, ca: str) -> ImapSession:
    return ImapSession("mail.lab.test", "127.0.0.1", host.imaps_port, "implicit", None,
                       ca_bundle=ca, timeout=5)


def test_no_auth_before_tls(lab_mail: tuple[LabMailHost, str]) -> None:
    host, _ = lab_mail
    with smtplib.SMTP("127.0.0.1", host.submission_port, timeout=5) as smtp:
        _code, caps = smtp.ehlo("test.local")
        assert b"STARTTLS" in caps and b"AUTH" not in caps
        assert smtp.docmd("AUTH", "PLAIN AGZvbwBiYXI=")[0] == 538
        assert smtp.docmd("MAIL", "FROM:<x@lab.test>")[0] == 530


@pytest.mark.parametrize("implicit", [False, True])
def test_round_trip_through_the_lab(lab_mail: tuple[LabMailHost, str], implicit: bool) -> None:
    host, ca = lab_mail
    token = f"wt-1-{'ab' * 8}{int(implicit)}"
    with _submission(host, ca, implicit) as sub:
        sub.open()
        sub.login(USER, PASSWORD)
        assert sub.send(USER, [USER], probe_message(USER, USER, token)).code == 250
    with _imap(host, ca) as imap:
        imap.open()
        imap.login(USER, PASSWORD)
        imap.select()
        uids = imap.search_header(PROBE_HEADER, token)
        assert len(uids) == 1
        raw = imap.fetch(uids[0])
        assert raw.startswith(b"Received: ") and b"DKIM-Signature: " in raw
        assert imap.header_values(uids, PROBE_HEADER) == {uids[0]: token}
        assert "UIDPLUS" in imap.capabilities
        imap.delete(uids)
        imap.refresh()
        assert imap.search_header(PROBE_HEADER, token) == []
    record = host.config.dkim_key
    public = serialization.load_pem_private_key(record, None).public_key()
    import base64

    spki = public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: txt)


def test_wrong_passwords_are_refused(lab_mail: tuple[LabMailHost, str]) -> None:
    host, ca = lab_mail
    with _submission(host, ca) as sub:
        sub.open()
        with pytest.raises(SubmissionRefused) as refused:
            sub.login(USER, "wrong")
        assert refused.value.reply.code == 535
    with _imap(host, ca) as imap:
        imap.open()
        with pytest.raises(ImapError) as err:
            imap.login(USER, "wrong")
        assert err.value.kind == "login"


def test_unknown_recipient_is_refused(lab_mail: tuple[LabMailHost, str]) -> None:
    host, ca = lab_mail
    with _submission(host, ca) as sub:
        sub.open()
        sub.login(USER, PASSWORD)
        with pytest.raises(SubmissionRefused) as refused:
            sub.send(USER, ["nobody@elsewhere.test"], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.step == "RCPT TO"


def test_imap_with_an_untrusted_ca_is_a_certificate_error(lab_mail: tuple[LabMailHost, str],
                                                         tmp_path: Path) -> None:
    host, _ = lab_mail
    other = LabCA(tmp_path / "other")
    other.issue(["x.test"])
    imap = ImapSession("mail.lab.test", "127.0.0.1", host.imaps_port, "implicit", None,
                       ca_bundle=str(other.cert_path), timeout=5)
    with pytest.raises(ImapError) as err:
        imap.open()
    assert err.value.kind == "certificate"
