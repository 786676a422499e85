"""Domain names as organizations see them: the Public Suffix List, once per process.

`organizational_domain(name)` is the RFC 7489 3.2 algorithm (public suffix plus one label). It
is DMARC's organizational domain, the registrable domain the sweep groups its jobs by
(watchtower/probe/runner.py `locality`), and the domain a compliance section is named after
(watchtower/compliance/score.py): one list, parsed once.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

from watchtower.parsers import ParseError
from watchtower.parsers._common import hostname_problem, normalize_name

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = ["organizational_domain"]


_psl_lock = threading.Lock()


def _psl() -> PublicSuffixList:
    """Parsed once per process: under a lock, because 32 probe threads asking at the start
    of a sweep would otherwise each parse the whole list (profiled at 8 % of a sweep)."""
    with _psl_lock:
        return _psl_parsed()


@functools.cache
def _psl_parsed() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organizational_domain(name: str) -> str:
    """The organizational domain of `name` (RFC 7489 3.2): public suffix plus one label.

    Uses the Public Suffix List shipped inside `publicsuffixlist` (no network), including its
    private section, so `user.github.io` is its own organization, as receivers treat it. A name
    that is itself a public suffix (or unknown to the list beyond its last label) is returned
    as is. Input may carry a trailing dot and any case; output is lower-case without the dot.
    Unicode names are converted to A-labels first. ParseError for a name that is not a DNS name.
    """
    if not isinstance(name, str):
        raise ParseError("domain must be text")
    bare = name.strip()
    if not bare.isascii():
        try:
            bare = bare.encode("idna").decode("ascii")
        except UnicodeError:
            raise ParseError(f"invalid internationalized domain {name!r}", term=name) from None
    problem = hostname_problem(bare, allow_underscore=True)
    if problem is not None:
        raise ParseError(f"invalid domain {name!r}: {problem}", term=name)
    bare = normalize_name(bare)
    org = _psl().privatesuffix(bare)
    return org if org is not None else bare
