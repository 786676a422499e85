"""CAA records (RFC 8659) with the account and method parameters of RFC 8657.

Feeds `dns.caa`: "fail syntax error or no `issue` tag; warn if the serving certificate's CA is not
authorized". `parse(flags, tag, value)` reads one record's rdata; `authorizes(records, issuer)`
answers the second half of that rule the way a CA must (RFC 8659 4), given the Relevant RRset
(the caller climbs the tree to find it: that needs DNS, this module does not).

Decisions where RFC 8659 leaves room, each taken the conservative way a CA takes it:

- A malformed `issue`/`issuewild` value still *restricts* issuance (the property is present) but
  authorizes nobody. Treating it as absent would let any CA issue, which is the opposite of what
  its publisher meant.
- "Known" tags are `issue`, `issuewild`, `iodef` and the CA/Browser Forum's `contactemail` and
  `contactphone`. Any other tag with the critical flag forbids issuance, as 4.1 requires.
- `accounturi`/`validationmethods` (RFC 8657) narrow an `issue` to one ACME account or set of
  methods. `authorizes` checks them only when the caller knows the account / method; a check
  that only knows the certificate's CA passes `None` and gets the CA-level answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from watchtower.parsers import ParseError
from watchtower.parsers._common import normalize_name, split_uri, text_of, uri_problem

__all__ = ["KNOWN_TAGS", "CaaRecord", "authorizes", "parse"]

CRITICAL = 0x80
KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "contactemail", "contactphone"})
ISSUE_TAGS = frozenset({"issue", "issuewild"})

_TAG = re.compile(r"[A-Za-z0-9]{1,15}\Z")
_LABEL = r"[A-Za-z0-9](?:-*[A-Za-z0-9])*"
_ISSUER = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
_PARAM_TAG = re.compile(rf"{_LABEL}\Z")
_PARAM_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*\Z")
_METHOD = re.compile(r"[A-Za-z0-9-]+\Z")
_WSP = " \t"


@dataclass(frozen=True, slots=True)
class CaaRecord:
    """One CAA property.

    For `issue`/`issuewild`: `issuer` is the issuer domain lower-cased, or None for the
    "nobody may issue" form (`0 issue ";"`); `parameters` keeps every `name=value` in order;
    `account_uri` and `validation_methods` are the RFC 8657 parameters. For `iodef`: `iodef` is
    the reporting URL.
    """

    flags: int
    tag: str
    value: str
    issuer: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    account_uri: str | None = None
    validation_methods: tuple[str, ...] | None = None
    iodef: str | None = None

    @property
    def critical(self) -> bool:
        return bool(self.flags & CRITICAL)

    @property
    def known(self) -> bool:
        return self.tag in KNOWN_TAGS


def parse(flags: int, tag: str, value: str | bytes) -> CaaRecord:
    """Parse one CAA rdata; ParseError with the reason for a malformed property.

    `tag` is matched case-insensitively and returned lower-case. Values of tags other than
    issue, issuewild and iodef are kept verbatim (their syntax is their owners' business).
    """
    if isinstance(flags, bool) or not isinstance(flags, int) or not 0 <= flags <= 255:
        raise ParseError(f"CAA flags must be an integer 0..255, not {flags!r}")
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ParseError(f"CAA tag must be 1 to 15 ASCII letters or digits, not {tag!r}",
                         term=str(tag))
    value = text_of(value, "CAA value")
    name = tag.lower()
    if name in ISSUE_TAGS:
        return _parse_issue(flags, name, value)
    if name == "iodef":
        problem = uri_problem(value)
        parts = split_uri(value)
        if problem is None and parts is not None and parts[0] not in ("mailto", "http", "https"):
            problem = f"scheme {parts[0]}: is not mailto:, http: or https:"
        if problem is not None:
            raise ParseError(f"invalid iodef URL: {problem}", term=value)
        return CaaRecord(flags=flags, tag=name, value=value, iodef=value)
    return CaaRecord(flags=flags, tag=name, value=value)


def _parse_issue(flags: int, tag: str, value: str) -> CaaRecord:
    """issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]."""
    head, semi, tail = value.partition(";")
    issuer_text = head.strip(_WSP)
    issuer: str | None = None
    if issuer_text:
        if not _ISSUER.match(issuer_text):
            raise ParseError(f"invalid issuer domain {issuer_text!r} in {tag}", term=value)
        issuer = issuer_text.lower()
    params: list[tuple[str, str]] = []
    known: dict[str, Any] = {}
    if semi and tail.strip(_WSP):
        for raw in tail.split(";"):
            pname, key, pvalue = _issue_parameter(raw, tag, value)
            if any(existing == key for existing, _ in params):
                raise ParseError(f"duplicate parameter {pname!r} in {tag} value", term=value)
            params.append((key, pvalue))
            reader = _PARAMETER_READERS.get(key)
            if reader is not None:
                known[key] = reader(pvalue, value)
    return CaaRecord(flags=flags, tag=tag, value=value, issuer=issuer,
                     parameters=tuple(params), account_uri=known.get("accounturi"),
                     validation_methods=known.get("validationmethods"))


def _issue_parameter(raw: str, tag: str, value: str) -> tuple[str, str, str]:
    """parameter = tag *WSP "=" *WSP value: (name as written, lower-case name, value)."""
    item = raw.strip(_WSP)
    if not item:
        raise ParseError(f"empty parameter in {tag} value", term=value)
    pname, eq, pvalue = item.partition("=")
    pname = pname.strip(_WSP)
    pvalue = pvalue.strip(_WSP)
    if not eq or not _PARAM_TAG.match(pname):
        raise ParseError(f"invalid parameter {item!r} in {tag} value", term=value)
    if not _PARAM_VALUE.match(pvalue):
        raise ParseError(f"invalid characters in parameter {pname!r}", term=value)
    return pname, pname.lower(), pvalue


def _account_uri(pvalue: str, value: str) -> str:
    """accounturi (RFC 8657 3): the ACME account URI."""
    problem = uri_problem(pvalue)
    if problem is not None:
        raise ParseError(f"invalid accounturi: {problem}", term=value)
    return pvalue


def _validation_methods(pvalue: str, value: str) -> tuple[str, ...]:
    """validationmethods (RFC 8657 4): comma-separated ACME challenge types."""
    parts = pvalue.split(",")
    if not pvalue or any(not _METHOD.match(part) for part in parts):
        raise ParseError("validationmethods must be a comma-separated list of "
                         "method names", term=value)
    return tuple(part.lower() for part in parts)


# The parameters of RFC 8657 (read into CaaRecord); others are kept in `parameters` only.
_PARAMETER_READERS: dict[str, Callable[[str, str], Any]] = {
    "accounturi": _account_uri,
    "validationmethods": _validation_methods,
}


def authorizes(
    records: Iterable[CaaRecord | tuple[int, str, str | bytes]],
    issuer_domain: str,
    wildcard: bool = False,
    *,
    account_uri: str | None = None,
    validation_method: str | None = None,
) -> bool:
    """Whether the CA identified by `issuer_domain` may issue under this Relevant RRset.

    RFC 8659 4: an empty RRset restricts nothing; an unknown critical property forbids
    everything; for a wildcard name `issuewild` properties govern when any exists, otherwise
    `issue` does; with no governing property at all, issuance is not restricted. Raw
    (flags, tag, value) tuples are accepted too: a malformed one restricts but authorizes no CA.
    """
    issuer = normalize_name(issuer_domain)
    entries: list[tuple[str, bool, CaaRecord | None]] = []
    for item in records:
        if isinstance(item, CaaRecord):
            entries.append((item.tag, item.critical, item))
            continue
        flags, tag, value = item
        critical = isinstance(flags, int) and bool(flags & CRITICAL)
        try:
            entries.append((tag.lower(), critical, parse(flags, tag, value)))
        except ParseError:
            entries.append((str(tag).lower(), critical, None))
    for tag, critical, _ in entries:
        if critical and tag not in KNOWN_TAGS:
            return False
    governing = "issuewild" if wildcard and any(t == "issuewild" for t, _, _ in entries) \
        else "issue"
    relevant = [record for tag, _, record in entries if tag == governing]
    if not relevant:
        return True
    for record in relevant:
        if record is None or record.issuer is None or record.issuer != issuer:
            continue
        if (account_uri is not None and record.account_uri is not None
                and record.account_uri != account_uri):
            continue
        if (validation_method is not None and record.validation_methods is not None
                and validation_method.lower() not in record.validation_methods):
            continue
        return True
    return False
