"""The macro grammar of SPF domain-specs (RFC 7208 7.1): validated when a record is read,
expanded during evaluation only where no sender data is needed (`%{d}`, `%%`, `%_`, `%-`)."""

from __future__ import annotations

import re
import urllib.parse

from watchtower.parsers import ParseError
from watchtower.parsers._common import hostname_problem

_MACRO_BODY = re.compile(r"([A-Za-z])(\d*)([rR]?)([.+,/_=-]*)\Z")

# toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
_TOPLABEL = re.compile(
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z"
)

_MACRO_LETTERS = "slodiphcrtv"

_EXP_ONLY_LETTERS = "crt"

def check_macro_string(spec: str, pos: int, raw: str, *, domain_spec: bool) -> None:
    """Validate a macro-string / domain-spec against RFC 7208 7.1 (and 4.8 for domain names)."""
    last_macro_end = -1
    i = spec.find("%")
    while i >= 0:
        last_macro_end = _macro_end(spec, i, pos, raw, domain_spec=domain_spec)
        i = spec.find("%", last_macro_end)
    if domain_spec and last_macro_end != len(spec):  # else domain-end = macro-expand
        check_domain_end(spec, last_macro_end, pos, raw)

def _macro_end(spec: str, i: int, pos: int, raw: str, *, domain_spec: bool) -> int:
    """Check the macro-expand starting at `spec[i]` ('%'); the index just after it."""
    if i + 1 >= len(spec):
        raise ParseError("'%' at the end (write '%%' for a literal percent sign)",
                         position=pos + i, term=raw)
    nxt = spec[i + 1]
    if nxt in "%_-":
        return i + 2
    if nxt != "{":
        raise ParseError(f"invalid macro '%{nxt}' (expected '%{{', '%%', '%_' or '%-')",
                         position=pos + i, term=raw)
    close = spec.find("}", i + 2)
    if close < 0:
        raise ParseError("unterminated macro '%{'", position=pos + i, term=raw)
    problem = _macro_body_problem(spec[i + 2:close], domain_spec=domain_spec)
    if problem is not None:
        raise ParseError(problem, position=pos + i, term=raw)
    return close + 1

def _macro_body_problem(body: str, *, domain_spec: bool) -> str | None:
    """What is wrong with the inside of `%{...}`: letter, digits, 'r', delimiters (7.1, 7.3)."""
    match = _MACRO_BODY.match(body)
    if match is None:
        return f"invalid macro '%{{{body}}}'"
    letter = match.group(1).lower()
    if letter not in _MACRO_LETTERS:
        return f"unknown macro letter {match.group(1)!r}"
    if domain_spec and letter in _EXP_ONLY_LETTERS:
        return (f"macro letter {match.group(1)!r} is only allowed in explanation text "
                "(RFC 7208 7.2)")
    digits = match.group(2)
    if digits and not digits.strip("0"):
        return "macro digit transformer must be nonzero (RFC 7208 7.3)"
    return None

def check_domain_end(spec: str, last_macro_end: int, pos: int, raw: str) -> None:
    """domain-end = ( "." toplabel [ "." ] ) / macro-expand, and a valid name without macros."""
    tail = spec[max(last_macro_end, 0):]
    if tail.endswith("."):
        tail = tail[:-1]
    dot = tail.rfind(".")
    if dot < 0:
        raise ParseError(f"domain {spec!r} is not fully qualified (needs '.' and a top label)",
                         position=pos, term=raw)
    toplabel = tail[dot + 1:]
    if not _TOPLABEL.match(toplabel):
        raise ParseError(f"invalid top label {toplabel!r} in domain {spec!r}", position=pos,
                         term=raw)
    if last_macro_end < 0:  # no macro at all
        problem = hostname_problem(spec, allow_underscore=True)
        if problem is not None:
            raise ParseError(f"invalid domain {spec!r}: {problem}", position=pos, term=raw)

def unexpandable(spec: str) -> str:
    """Why `expand` gave up on a domain-spec, for the evidence notes."""
    if re.search(r"%\{[^dD]", spec):
        return "macro needs sender data"
    return "expands to an invalid name"

_ESCAPES = {"%": "%", "_": " ", "-": "%20"}

def expand(spec: str, current: str) -> str | None:
    """Expand a domain-spec whose only macros need no sender data (`%{d}`, `%%`, `%_`, `%-`).

    Returns the lower-case name without trailing dot, or None when the spec needs the sender
    (`%{i}`, `%{s}`, ...) or expands to something that is not a DNS name.
    """
    out: list[str] = []
    start = 0
    i = spec.find("%")
    while i >= 0:
        out.append(spec[start:i])
        escape = _ESCAPES.get(spec[i + 1])
        if escape is not None:
            out.append(escape)
            start = i + 2
        else:
            close = spec.index("}", i)
            value = _expand_macro(spec[i + 2:close], current)
            if value is None:
                return None
            out.append(value)
            start = close + 1
        i = spec.find("%", start)
    out.append(spec[start:])
    return _expanded_name("".join(out))

def _expand_macro(body: str, current: str) -> str | None:
    """`%{d...}` with its transformers applied to `current`; None for any other letter."""
    match = _MACRO_BODY.match(body)
    assert match is not None  # validated by parse()
    letter, digits, reverse, delims = match.groups()
    if letter.lower() != "d":
        return None
    parts = re.split("[" + re.escape(delims or ".") + "]", current)
    if reverse:
        parts.reverse()
    if digits:
        keep = int(digits[-4:]) if len(digits) <= 4 else 9999
        parts = parts[-keep:]
    value = ".".join(parts)
    return urllib.parse.quote(value, safe="") if letter.isupper() else value

def _expanded_name(name: str) -> str | None:
    """The expansion as a name: no trailing dot, at most 253 characters (7.3), valid."""
    if name.endswith("."):
        name = name[:-1]
    while len(name) > 253 and "." in name:  # RFC 7208 7.3: drop labels from the left
        name = name.split(".", 1)[1]
    if hostname_problem(name, allow_underscore=True) is not None:
        return None
    return name.lower()
