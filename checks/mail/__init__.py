"""mail.* checks (per mail domain): MX, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, SMTP, DANE,
FCrDNS, open relay, DNSBL and parked domains.

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
    mx,
    parked,
    reputation,
    roundtrip,
    smtp,
    spf,
    submission,
    transport,
)

__all__ = ["dane", "dkim", "dmarc", "imap", "mx", "parked", "reputation", "roundtrip", "smtp",
           "spf", "submission", "transport"]
