"""The sweep's SMTP client (`ctx.smtp`): everything a check may do over SMTP, with one timeout,
one EHLO name and the fleet's CA bundle.

MX probes (the STARTTLS handshake with its certificate, the open-relay question) are memoised
per (MX, address, port) for the sweep by its one `SmtpProber`, so the starttls, certificate and
DANE checks of a domain share each dialogue. STARTTLS callbacks for `TlsProber` and submission
sessions on a provider's own mail host are made fresh for each probe.
"""

from __future__ import annotations

import threading

from watchtower.net.smtp import SmtpProber
from watchtower.net.smtp_dialogue import DEFAULT_TIMEOUT, StartTlsDialogue, default_helo
from watchtower.net.smtp_outcomes import RelayOutcome, StartTlsOutcome
from watchtower.net.submission import SubmissionSession, TlsMode
from watchtower.net.tls import TlsProber
from watchtower.net.tlsscan import TlsScanner


class SmtpClient:
    """SMTP for one sweep: memoised MX probes, fresh dialogues and submission sessions."""

    def __init__(self, tls: TlsProber, *, timeout: float = DEFAULT_TIMEOUT,
                 helo: str | None = None, scanner: TlsScanner | None = None) -> None:
        self.timeout = timeout
        self.tls = tls
        self.scanner = scanner
        self.ca_bundle = tls.ca_bundle
        self._helo = helo
        self._prober: SmtpProber | None = None
        self._lock = threading.Lock()

    @property
    def helo(self) -> str:
        """Our EHLO name: the one given, else the process's (`default_helo`), asked for only
        when a check speaks SMTP."""
        return self._helo or default_helo()

    @property
    def prober(self) -> SmtpProber:
        """The sweep's one MX prober, whose memo every MX check shares."""
        with self._lock:
            if self._prober is None:
                self._prober = SmtpProber(self.tls, helo=self.helo, timeout=self.timeout,
                                          scanner=self.scanner)
            return self._prober

    def starttls(self, mx: str, address: str, port: int, *, deadline: float | None
                 ) -> StartTlsOutcome:
        """Banner, EHLO, STARTTLS and the verified handshake of one MX address (memoised)."""
        return self.prober.starttls(mx, address, port, deadline=deadline)

    def relay(self, mx: str, address: str, port: int, *, deadline: float | None
              ) -> RelayOutcome:
        """The open-relay question to one MX address, stopping at RCPT (memoised)."""
        return self.prober.relay(mx, address, port, deadline=deadline)

    def dialogue(self, deadline: float | None) -> StartTlsDialogue:
        """A STARTTLS callback for `TlsProber.probe` (one per handshake)."""
        return StartTlsDialogue(self.helo, deadline, self.timeout)

    def submission(self, host: str, address: str, port: int, mode: TlsMode,
                   deadline: float | None, *, verify: bool = True) -> SubmissionSession:
        """A submission session to `host` at `address` (opened by the caller). `verify=False`
        only reads capabilities; no credential is ever sent over it."""
        return SubmissionSession(host, address, port, mode, self.helo, deadline,
                                 ca_bundle=self.ca_bundle, verify=verify, timeout=self.timeout)
