"""mail.* checks (per mail domain): MX, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, SMTP, DANE,
FCrDNS, open relay, DNSBL and parked domains; (per mail host) submission, IMAP, the round
trip, the spam filter, Sieve and the DKIM signing keys.

One module per concern; importing the package registers them all. Parsers are in
`watchtower.parsers`, network access in `watchtower.net` (DNS through the sweep's cached
resolver, SMTP through `watchtower.net.smtp`).
"""

from __future__ import annotations

from . import (
    dane,
    dkim,
    dmarc,
    imap,
    keymatch,
    mx,
    parked,
    reputation,
    roundtrip,
    sieve,
    smtp,
    spamfilter,
    spf,
    submission,
    transport,
)

__all__ = ["dane", "dkim", "dmarc", "imap", "keymatch", "mx", "parked", "reputation",
           "roundtrip", "sieve", "smtp", "spamfilter", "spf", "submission", "transport"]
