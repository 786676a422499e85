"""The mail parts of a fleet: the domains mail is addressed to ([[mail_domains]]) and the
mail servers that serve them ([[mail_hosts]]), with the DKIM key files a host signs with."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from watchtower.config.base import Secret, Strict, Tagged, check_domain, check_url


class MailDomain(Tagged):
    name: str = Field(description='the domain mail is addressed to, e.g. "example.org"')
    sending: bool = Field(default=True, description="the domain sends and receives mail; "
                          'false: parked, it must publish "v=spf1 -all", DMARC p=reject and a '
                          "null MX")
    dkim_selectors: list[str] = Field(
        default_factory=list,
        description="DKIM selectors whose `SELECTOR._domainkey` record mail.dkim checks, "
                    'e.g. ["s1"]')
    mta_sts: bool = Field(default=True, description="the domain publishes an MTA-STS policy "
                          "(RFC 8461) that mail.mta-sts checks")
    dane: bool = Field(default=False, description="the MX hosts publish TLSA records (RFC "
                       "7672): true makes their absence a failure of mail.dane, not a warning")
    dnsbl: list[str] = Field(default_factory=list, description="DNS blocklist zones mail.dnsbl "
                             'looks the MX addresses up in, e.g. ["zen.spamhaus.org"]; empty: '
                             "not checked")
    mail_host: str | None = Field(default=None, description="name of the [[mail_hosts]] entry")
    # dns.declared: MX host names in preference order (default: the mail host's), the DKIM
    # public keys by selector (base64 `p=`, or { "$file" = PEM/TXT }), the policy records.
    mx: list[str] = Field(default_factory=list, description="MX host names in preference "
                          "order that dns.declared expects; default: the mail host's, e.g. "
                          '["mail.example.org"]')
    dkim_keys: dict[str, str | Secret] = Field(
        default_factory=dict, description="selector -> DKIM public key (base64 `p=`, or "
        '{ "$file" = PEM or TXT }) that dns.declared expects in DNS, e.g. { s1 = "MIIB..." }')
    spf: str | None = Field(default=None, description="the SPF record dns.declared expects; "
                            'default "v=spf1 mx -all" (parked: "v=spf1 -all")')
    dmarc: str | None = Field(default=None, description="the DMARC record dns.declared expects; "
                              'default "v=DMARC1; p=reject; rua=mailto:dmarc-reports@DOMAIN"')
    tls_rpt: str | None = Field(default=None, description="the TLS-RPT record dns.declared "
                                'expects; default "v=TLSRPTv1; rua=mailto:tls-reports@DOMAIN"')

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_domain(value)


class DkimKeyFile(Strict):
    """One DKIM signing key on a mail host (mail.dkim.key-match): the selector it signs for
    and where its private key lies; only its public half is ever read off the host."""

    domain: str = Field(description="the signing domain (d=), e.g. example.org")
    selector: str = Field(min_length=1, description="the selector (s=), e.g. s1")
    path: str = Field(min_length=1, description="private key file on the host, e.g. "
                      "/var/lib/opendkim/keys/example.org/s1.private or "
                      "/var/lib/rspamd/dkim/example.org.s1.key")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return check_domain(value)


class MailHost(Tagged):
    name: str = Field(description='the mail server\'s name in results and references, e.g. "mx1"')
    host: str = Field(description='its host name for SMTP submission and IMAP, e.g. '
                      '"mail.example.org"')
    addresses: list[str] = Field(default_factory=list, description="its public IPs (DNS)")
    submission_port: int = Field(default=587, description="SMTP submission port (STARTTLS)")
    submissions_port: int = Field(default=465, description="SMTP submission port with "
                                  "implicit TLS")
    imaps_port: int = Field(default=993, description="IMAP port with implicit TLS")
    imap_port: int | None = Field(default=None, gt=0, lt=65536,
                                  description="plain IMAP port probed with STARTTLS (143); "
                                  "unset = not offered")
    probe_user: str | None = Field(default=None, description="login of the probe mailbox the "
                                   'mail checks use, e.g. "watchtower-probe@example.org"')
    probe_password: Secret | None = Field(default=None,
                                          description="password of the probe mailbox")
    # mail.roundtrip
    roundtrip_to: str | None = Field(default=None, description="recipient of the round-trip "
                                     "probe; default the probe mailbox (it must end up there)")
    roundtrip_via: Literal["submission", "submissions"] = Field(
        default="submission", description="which submission port mail.roundtrip sends through")
    roundtrip_deadline: float = Field(default=60.0, gt=0, le=600,
                                      description="seconds a probe message may take to arrive")
    expect_auth_results: bool = Field(default=False, description="require spf and dmarc "
                                      "results in Authentication-Results (set when the "
                                      "receiving side adds them)")
    expect_arc: bool = Field(default=False, description="the round trip passes a hop that "
                             "seals with ARC (e.g. roundtrip_to is a forwarding alias): "
                             "require a valid ARC chain (cv=pass), not only judge one present")
    # mail.sieve
    sieve_port: int = Field(default=4190, gt=0, lt=65536,
                            description="ManageSieve port (RFC 5804; STARTTLS, then login with "
                            "the probe mailbox), e.g. 4190")
    sieve_extensions: list[str] = Field(
        default_factory=lambda: ["fileinto"],
        description='Sieve extensions the SIEVE capability must list, e.g. ["fileinto", '
                    '"vacation", "imap4flags"]')
    sieve_folder: str = Field(default="watchtower-sieve", min_length=1,
                              description="folder of the probe mailbox that the probe's Sieve "
                              "script files its test message into (created if missing)")
    # mail.spam-filter
    spam_filter: Literal["reject", "junk"] = Field(
        default="reject", description="what the filter does with the GTUBE test message: "
        "reject it at SMTP (5xx) or deliver it marked as spam or into junk_folder")
    junk_folder: str = Field(default="Junk", min_length=1,
                             description="the probe mailbox's spam folder, e.g. Junk")
    rspamd_controller: str | None = Field(
        default=None, description="Rspamd controller URL for /ping and /stat, e.g. "
        "http://127.0.0.1:11334; unset: no controller health")
    rspamd_password: Secret | None = Field(default=None,
                                           description="the controller's (read-only) password")
    # mail.dkim.key-match
    runs_on: str | None = Field(default=None, description="name of the [[hosts]] entry this "
                                "mail server runs on: the host transport that reads the public "
                                "halves of its DKIM keys")
    dkim_keys: list[DkimKeyFile] = Field(default_factory=list,
                                         description="the signing keys on the host")
    dkim_pubkey_command: list[str] = Field(
        default_factory=lambda: ["openssl", "pkey", "-pubout", "-in"], min_length=1,
        description="argv that prints the PEM public half of the key file named after it, "
        'run on the host, e.g. ["sudo", "-n", "openssl", "pkey", "-pubout", "-in"]')

    @field_validator("rspamd_controller")
    @classmethod
    def _controller(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)
