"""Pure parsers of outside data: the parsing half of watchtower's "facts" layer.

Every module here turns text or bytes that came from the network (DNS TXT/CAA/TLSA rdata, an
MTA-STS policy, a security.txt file, a certificate chain) into typed, frozen values. None of them
does I/O: the probes in `watchtower.net` fetch, these modules read, the checks judge. Keeping the
reading pure lets every branch be tested from recorded data and fuzzed at will.

The one contract shared by all of them: bad input raises `ParseError` and nothing else. A parser
that leaks `IndexError` or `UnicodeDecodeError` on a hostile record would turn a compliance
finding ("your SPF record is broken") into a crashed probe, which the runner reports as `error`
and which hides the real problem from the operator.

Submodules are imported explicitly (`from watchtower.parsers import spf`) so that importing this
package stays cheap: `dkim` and `tlsa` pull in `cryptography`, `dmarc` loads the Public Suffix
List on first use.
"""

from __future__ import annotations

__all__ = ["ParseError"]


class ParseError(ValueError):
    """Input that does not follow its grammar, with a reason a human can act on.

    `reason` is a full sentence fragment meant for a report ("bad CIDR length '/33' in 'ip4:...'").
    `position` is the 0-based character offset in the parsed text where the problem starts, when
    there is one; `term` is the offending term, tag or line as written, when there is one. Both
    are optional because some problems belong to the whole input ("missing Contact field").

    It subclasses `ValueError` so callers that only know "bad value" still catch it.
    """

    def __init__(self, reason: str, *, position: int | None = None, term: str | None = None):
        self.reason = reason
        self.position = position
        self.term = term
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.term is not None:
            where.append(f"in {self.term!r}")
        if self.position is not None:
            where.append(f"at offset {self.position}")
        return f"{self.reason} ({', '.join(where)})" if where else self.reason
