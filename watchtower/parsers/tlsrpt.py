"""SMTP TLS Reporting records (RFC 8460 3): `v=TLSRPTv1; rua=mailto:...,https://...`.

Feeds `mail.tls-rpt`. The grammar is strict (case-sensitive `v=TLSRPTv1` first, `;`-separated
fields, `rua=` required); a record that breaks it is a ParseError because reporters discard it.
URIs in `rua` with a scheme other than `mailto:` or `https:` are syntactically URIs but no
reporter will use them: they are kept, flagged `supported=False`, and the check decides ("no
valid rua") from `valid_rua`.
"""

from __future__ import annotations

from dataclasses import dataclass

from watchtower.parsers import ParseError
from watchtower.parsers._common import (
    EXT_VALUE,
    WSP,
    mailto_address,
    split_uri,
    uri_problem,
    versioned_fields,
    web_host,
)

__all__ = ["TlsRptRecord", "TlsRptUri", "parse"]



@dataclass(frozen=True, slots=True)
class TlsRptUri:
    """One `rua` destination. `supported` is True for mailto: and https: (RFC 8460 3)."""

    uri: str
    scheme: str
    supported: bool
    host: str | None = None


@dataclass(frozen=True, slots=True)
class TlsRptRecord:
    text: str
    rua: tuple[TlsRptUri, ...]
    extensions: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def valid_rua(self) -> tuple[TlsRptUri, ...]:
        return tuple(uri for uri in self.rua if uri.supported)


def parse(text: str) -> TlsRptRecord:
    """Parse a TLS-RPT record; ParseError for anything reporters would discard."""
    warnings: list[str] = []
    rua: tuple[TlsRptUri, ...] | None = None
    extensions: list[tuple[str, str]] = []
    seen: set[str] = set()
    for start, field, name, value in versioned_fields(text, "v=TLSRPTv1", "TLS-RPT"):
        if name in seen:
            raise ParseError(f"duplicate field {name!r}", position=start, term=field)
        seen.add(name)
        if name == "rua":
            rua = _parse_rua(value, start, field)
        else:
            if not EXT_VALUE.match(value):
                raise ParseError(f"invalid value for {name!r}", position=start, term=field)
            extensions.append((name, value))
            warnings.append(f"unknown field {name!r} is ignored")
    if rua is None:
        raise ParseError("missing required 'rua' field")
    for uri in rua:
        if not uri.supported:
            warnings.append(f"rua URI {uri.uri!r} uses {uri.scheme}:, reporters only use "
                            "mailto: and https:")
    return TlsRptRecord(text=text, rua=rua, extensions=tuple(extensions),
                        warnings=tuple(warnings))


def _parse_rua(value: str, position: int, field: str) -> tuple[TlsRptUri, ...]:
    if not value:
        raise ParseError("empty rua= (needs at least one URI)", position=position, term=field)
    out: list[TlsRptUri] = []
    for raw in value.split(","):
        uri = raw.strip(WSP)
        problem = uri_problem(uri)
        if problem is not None:
            raise ParseError(f"invalid URI {uri!r} in rua=: {problem}", position=position,
                             term=field)
        parts = split_uri(uri)
        assert parts is not None
        scheme = parts[0]
        host: str | None = None
        if scheme == "mailto":
            mailbox = mailto_address(uri)
            host = mailbox[1] if mailbox else None
        elif scheme == "https":
            host = web_host(uri)
        out.append(TlsRptUri(uri=uri, scheme=scheme, supported=scheme in ("mailto", "https"),
                             host=host))
    return tuple(out)
