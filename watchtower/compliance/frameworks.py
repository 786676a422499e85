"""Every graded criterion mapped to internet.nl's test identifiers and to the "pas toe of leg
uit" standards of the Forum Standaardisatie, with internet.nl's status semantics.

internet.nl reports each test as passed / info / warning / failed / not_tested (and error when
its probe broke), and caps a test's status at the test's requirement level: an optional test
that fails shows `info`, a recommended one `warning`, a required one `failed` (internet.nl
checks/scoring.py *_WORST_STATUS and interface/batch/openapi.yaml, "Test.status"). The ids are
those of internet.nl's batch API v2 (interface/batch/__init__.py), so a customer can put a
watchtower report next to an internet.nl run.

A test is computed by one watchtower check: either as a named criterion in that check's
evidence (`evidence["criteria"]`, see `watchtower.compliance.tls_criteria`), or (criterion
None) as the check's own status. Tests watchtower cannot run here have check None and are
listed as not tested, never as passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from watchtower.compliance.ncsc_tls import Level


class InStatus(StrEnum):
    """internet.nl's test statuses (API spelling)."""

    PASSED = "passed"
    INFO = "info"
    WARNING = "warning"
    FAILED = "failed"
    NOT_TESTED = "not_tested"
    ERROR = "error"
    #: watchtower's own: an operator explained why this criterion is not met ("comply or
    #: explain"); not scored as a failure while the explanation is valid.
    EXPLAINED = "explained"

    @property
    def order(self) -> int:
        """internet.nl's ORDERED_STATUSES: error < failed < warning < info < not tested <
        passed; a test's status never goes below its worst status."""
        return _ORDER[self]

    def capped(self, worst: InStatus) -> InStatus:
        """This status as internet.nl shows it for a test whose requirement level is `worst`."""
        if self in (InStatus.ERROR, InStatus.NOT_TESTED, InStatus.EXPLAINED):
            return self
        return self if self.order >= worst.order else worst

    @staticmethod
    def worst_of(statuses: Iterable[InStatus]) -> InStatus:
        """The status of several servers (every MX, every address) together: the worst."""
        ranked = sorted(statuses, key=_COMBINE.index)
        return ranked[0] if ranked else InStatus.NOT_TESTED


_ORDER = {InStatus.ERROR: 0, InStatus.FAILED: 1, InStatus.WARNING: 2, InStatus.INFO: 3,
          InStatus.NOT_TESTED: 4, InStatus.EXPLAINED: 5, InStatus.PASSED: 6}
#: Combining servers: a failure anywhere wins, then errors, warnings, infos; not tested
#: only when nothing was tested.
_COMBINE = (InStatus.FAILED, InStatus.ERROR, InStatus.WARNING, InStatus.INFO,
            InStatus.EXPLAINED, InStatus.PASSED, InStatus.NOT_TESTED)

#: The status a guideline level gives before capping (internet.nl: good and sufficient pass,
#: phase out warns, insufficient fails).
LEVEL_STATUS = {Level.GOOD: InStatus.PASSED, Level.SUFFICIENT: InStatus.PASSED,
                Level.PHASE_OUT: InStatus.WARNING, Level.INSUFFICIENT: InStatus.FAILED}

#: Requirement levels by worst status, as internet.nl's explanations word them.
REQUIREMENT = {InStatus.FAILED: "required", InStatus.WARNING: "recommended",
               InStatus.INFO: "optional"}


class Standard(StrEnum):
    """The Forum Standaardisatie "pas toe of leg uit" standards internet.nl tests."""

    DNSSEC = "DNSSEC"
    HTTPS_HSTS = "HTTPS and HSTS"
    SPF = "SPF"
    DKIM = "DKIM"
    DMARC = "DMARC"
    STARTTLS_DANE = "STARTTLS and DANE"
    IPV6 = "IPv6"
    RPKI = "RPKI"
    SECURITY_TXT = "security.txt"


@dataclass(frozen=True, slots=True)
class Test:
    """One internet.nl test and where watchtower computes it."""

    id: str
    title: str
    worst: InStatus
    standard: Standard
    check: str | None
    criterion: str | None = None

    @property
    def requirement(self) -> str:
        return REQUIREMENT[self.worst]

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "requirement": self.requirement,
                "standard": str(self.standard), "check": self.check,
                "criterion": self.criterion}


F, W, I = InStatus.FAILED, InStatus.WARNING, InStatus.INFO  # noqa: E741
S = Standard
WEB_TLS, MAIL_TLS = "web.tls.ncsc", "mail.starttls.ncsc"

#: The TLS criteria both internet.nl categories share: (suffix, title, web worst, mail worst).
_TLS_SHARED = (
    ("tls_version", "tls_version", "TLS version", F, F),
    ("tls_ciphers", "tls_ciphers", "Ciphers (algorithm selections)", F, F),
    ("tls_cipherorder", "cipher_order", "Cipher order", F, F),
    ("tls_keyexchange", "key_exchange", "Key exchange parameters", F, F),
    ("tls_keyexchangehash", "kex_hash", "Hash function for key exchange", F, W),
    ("tls_compress", "tls_compression", "TLS compression", F, F),
    ("tls_secreneg", "secure_renegotiation", "Secure renegotiation", F, F),
    ("tls_clientreneg", "client_renegotiation", "Client-initiated renegotiation", I, I),
    ("tls_extendedmastersecret", "extended_master_secret", "Extended Master Secret", F, F),
    ("tls_0rtt", "zero_rtt", "0-RTT", F, F),
    ("cert_chain", "cert_trust", "Trust chain of certificate", F, I),
    ("cert_pubkey", "cert_pubkey", "Public key of certificate", F, F),
    ("cert_sig", "cert_signature", "Signature of certificate", F, F),
    ("cert_domain", "cert_domain", "Domain name on certificate", F, I),
)



def _shared(prefix: str, group: str, *, mail: bool) -> list[Test]:
    """The shared TLS criteria of one group (tls_ or cert_) as web or mail tests."""
    standard, check = (S.STARTTLS_DANE, MAIL_TLS) if mail else (S.HTTPS_HSTS, WEB_TLS)
    return [Test(prefix + suffix, title, worst_mail if mail else worst_web, standard, check,
                 key)
            for suffix, key, title, worst_web, worst_mail in _TLS_SHARED
            if suffix.startswith(group)]


WEB: tuple[Test, ...] = (
    Test("web_ipv6_ns_address", "IPv6 addresses for name servers", F, S.IPV6, "dns.ipv6",
         "ns_aaaa"),
    Test("web_ipv6_ns_reach", "IPv6 reachability of name servers", F, S.IPV6, "dns.ipv6",
         "ns_reach"),
    Test("web_ipv6_ws_address", "IPv6 addresses for web server", F, S.IPV6, "dns.ipv6",
         "web_aaaa"),
    Test("web_ipv6_ws_reach", "IPv6 reachability of web server", F, S.IPV6, "dns.ipv6",
         "web_reach"),
    Test("web_ipv6_ws_similar", "Same website on IPv6 and IPv4", F, S.IPV6, None),
    Test("web_dnssec_exist", "DNSSEC existence", F, S.DNSSEC, "dns.dnssec.valid"),
    Test("web_dnssec_valid", "DNSSEC validity", F, S.DNSSEC, "dns.dnssec.valid"),
    Test("web_https_http_available", "HTTPS available", F, S.HTTPS_HSTS, WEB_TLS,
         "https_exists"),
    Test("web_https_http_redirect", "HTTPS redirect", F, S.HTTPS_HSTS, "web.https.redirect"),
    Test("web_https_http_compress", "HTTP compression", I, S.HTTPS_HSTS, "web.headers",
         "http_compression"),
    Test("web_https_http_hsts", "HSTS", F, S.HTTPS_HSTS, "web.hsts"),
    *_shared("web_https_", "tls_", mail=False),
    Test("web_https_tls_ocsp", "OCSP stapling", W, S.HTTPS_HSTS, WEB_TLS, "ocsp_stapling"),
    Test("web_https_tls_caa", "CAA for domain", W, S.HTTPS_HSTS, "dns.caa"),
    *_shared("web_https_", "cert_", mail=False),
    Test("web_https_dane_exist", "DANE existence (web)", I, S.HTTPS_HSTS, None),
    Test("web_https_dane_valid", "DANE validity (web)", W, S.HTTPS_HSTS, None),
    Test("web_appsecpriv_x_frame_options", "X-Frame-Options", I, S.HTTPS_HSTS, "web.headers",
         "x_frame_options"),
    Test("web_appsecpriv_x_content_type_options", "X-Content-Type-Options", W, S.HTTPS_HSTS,
         "web.headers", "x_content_type_options"),
    Test("web_appsecpriv_csp", "Content-Security-Policy", W, S.HTTPS_HSTS, "web.headers",
         "csp"),
    Test("web_appsecpriv_referrer_policy", "Referrer-Policy", W, S.HTTPS_HSTS, "web.headers",
         "referrer_policy"),
    Test("web_appsecpriv_securitytxt", "security.txt", W, S.SECURITY_TXT,
         "web.security-txt"),
    Test("web_rpki_exists", "Route Origin Authorisation existence (web)", F, S.RPKI, None),
    Test("web_rpki_valid", "Route announcement validity (web)", F, S.RPKI, None),
    Test("web_ns_rpki_exists", "Route Origin Authorisation existence (name servers)", F,
         S.RPKI, None),
    Test("web_ns_rpki_valid", "Route announcement validity (name servers)", F, S.RPKI, None),
)

MAIL: tuple[Test, ...] = (
    Test("mail_ipv6_ns_address", "IPv6 addresses for name servers", F, S.IPV6, "dns.ipv6",
         "ns_aaaa"),
    Test("mail_ipv6_ns_reach", "IPv6 reachability of name servers", F, S.IPV6, "dns.ipv6",
         "ns_reach"),
    Test("mail_ipv6_mx_address", "IPv6 addresses for mail server(s)", F, S.IPV6, "dns.ipv6",
         "mx_aaaa"),
    Test("mail_ipv6_mx_reach", "IPv6 reachability of mail server(s)", F, S.IPV6, "dns.ipv6",
         "mx_reach"),
    Test("mail_dnssec_mailto_exist", "DNSSEC existence (email address domain)", F, S.DNSSEC,
         "dns.dnssec.valid"),
    Test("mail_dnssec_mailto_valid", "DNSSEC validity (email address domain)", F, S.DNSSEC,
         "dns.dnssec.valid"),
    Test("mail_dnssec_mx_exist", "DNSSEC existence (mail server domains)", F, S.DNSSEC, None),
    Test("mail_dnssec_mx_valid", "DNSSEC validity (mail server domains)", F, S.DNSSEC, None),
    Test("mail_auth_dmarc_exist", "DMARC existence", F, S.DMARC, "mail.dmarc.record"),
    Test("mail_auth_dmarc_policy", "DMARC policy", F, S.DMARC, "mail.dmarc.policy"),
    Test("mail_auth_dkim_exist", "DKIM existence", F, S.DKIM, "mail.dkim"),
    Test("mail_auth_spf_exist", "SPF existence", F, S.SPF, "mail.spf.record"),
    Test("mail_auth_spf_policy", "SPF policy", F, S.SPF, "mail.spf.policy"),
    Test("mail_starttls_tls_available", "STARTTLS available", F, S.STARTTLS_DANE, MAIL_TLS,
         "starttls_exists"),
    *_shared("mail_starttls_", "tls_", mail=True),
    Test("mail_starttls_tls_caa", "CAA for mail server domain", W, S.STARTTLS_DANE, "dns.caa"),
    *_shared("mail_starttls_", "cert_", mail=True),
    Test("mail_starttls_dane_exist", "DANE existence", F, S.STARTTLS_DANE, "mail.dane",
         "dane_exists"),
    Test("mail_starttls_dane_valid", "DANE validity", F, S.STARTTLS_DANE, "mail.dane",
         "dane_valid"),
    Test("mail_starttls_dane_rollover", "DANE rollover scheme", I, S.STARTTLS_DANE,
         "mail.dane", "dane_rollover"),
    Test("mail_rpki_exists", "Route Origin Authorisation existence (mail)", F, S.RPKI, None),
    Test("mail_rpki_valid", "Route announcement validity (mail)", F, S.RPKI, None),
    Test("mail_ns_rpki_exists", "Route Origin Authorisation existence (name servers)", F,
         S.RPKI, None),
    Test("mail_ns_rpki_valid", "Route announcement validity (name servers)", F, S.RPKI, None),
    Test("mail_mx_ns_rpki_exists", "Route Origin Authorisation existence (MX name servers)", F,
         S.RPKI, None),
    Test("mail_mx_ns_rpki_valid", "Route announcement validity (MX name servers)", F, S.RPKI,
         None),
)

#: The frameworks a report has a section for, in order.
FRAMEWORKS = {"internet.nl web": WEB, "internet.nl mail": MAIL}
PAS_TOE_OF_LEG_UIT = "pas toe of leg uit"

BY_ID: dict[str, Test] = {t.id: t for t in (*WEB, *MAIL)}


def untested() -> list[Test]:
    """The internet.nl tests watchtower cannot run here (always reported as not tested)."""
    return [t for t in (*WEB, *MAIL) if t.check is None]


def tests_of_check(check_id: str) -> list[Test]:
    """The internet.nl tests a watchtower check computes (for `watchtower checks`)."""
    return [t for t in (*WEB, *MAIL) if t.check == check_id]


def standards_of_check(check_id: str) -> list[str]:
    """The "pas toe of leg uit" standards a check gives evidence for."""
    return sorted({str(t.standard) for t in tests_of_check(check_id)})


def tests_of(framework: str, criterion: str, check_id: str) -> list[Test]:
    """The tests of one framework that a check's criterion answers (web or mail ids)."""
    return [t for t in FRAMEWORKS[framework] if t.check == check_id and t.criterion == criterion]


def internetnl_ids(check_id: str, criterion: str | None) -> list[str]:
    """The internet.nl ids of one criterion of one check (carried in its JSON evidence)."""
    return [t.id for t in (*WEB, *MAIL) if t.check == check_id and t.criterion == criterion]


def mapping_of(check_id: str) -> dict[str, Any]:
    """The internet.nl tests a check computes and the "pas toe of leg uit" standards it gives
    evidence for, as `watchtower checks --format json` shows them beside the check."""
    return {"internetnl": [t.to_json() for t in tests_of_check(check_id)],
            "pas_toe_of_leg_uit": standards_of_check(check_id)}
