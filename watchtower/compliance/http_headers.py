"""The HTTP response headers internet.nl tests, graded by internet.nl's rules
(checks/tasks/http_headers.py of internetstandards/Internet.nl, re-stated here as rules):

- X-Frame-Options: the first value is DENY or SAMEORIGIN (optional test). watchtower also
  accepts a CSP frame-ancestors of only 'none'/'self', which browsers prefer (CSP3 6.4.2).
- X-Content-Type-Options: the first value is nosniff (recommended).
- Content-Security-Policy (recommended): no 'unsafe-inline', 'unsafe-eval', 'unsafe-hashes';
  no http: sources, no bare https:, no host without a scheme, no * or 127.0.0.1 host, no
  data: for object-src/script-src; default-src and base-uri are 'none' alone or 'self' with
  hosts of the site's own domain; frame-src (or default-src), frame-ancestors and
  form-action are set to 'self', 'none' or hosts.
- Referrer-Policy (recommended): the last known value counts; no-referrer and same-origin
  pass, strict-origin(-when-cross-origin) pass with a recommendation (info), anything else
  warns, none at all is a recommendation (browsers default to strict-origin-when-cross-origin).
- HTTP compression over HTTPS (optional, NCSC-NL 3.4.1 / BREACH): a Content-Encoding on the
  answer to a request that accepts compression (`ACCEPT_ENCODING`, internet.nl's list).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from watchtower.compliance.criteria import Criterion
from watchtower.compliance.frameworks import InStatus
from watchtower.compliance.ncsc_tls import HTTP_COMPRESSION, Level

PASSED, INFO, WARNING, FAILED = (InStatus.PASSED, InStatus.INFO, InStatus.WARNING,
                                 InStatus.FAILED)
#: What internet.nl's header request accepts, so a server that compresses anything says so.
ACCEPT_ENCODING = "br, compress, deflate, exi, gzip, pack200-gzip, x-compress, x-gzip, zstd"
GOOD_REFERRER = frozenset({"no-referrer", "same-origin"})
RECOMMEND_REFERRER = frozenset({"strict-origin", "strict-origin-when-cross-origin"})
BAD_REFERRER = frozenset({"origin", "origin-when-cross-origin", "no-referrer-when-downgrade",
                          "unsafe-url"})
_UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'")
_KEYWORD = re.compile(r"^'(self|none|report-sample|strict-dynamic|unsafe-[a-z-]+)'$")
_NONCE_HASH = re.compile(r"^'(nonce-|sha256-|sha384-|sha512-)[A-Za-z0-9+/_=-]+'$")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):$")
_HOST = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>[^:/']+|\[.+\])"
                   r"(?::(?:\d+|\*))?(?:/.*)?$")


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip().lower()


def x_frame_options(xfo: str | None, csp: str | None) -> Criterion:
    if _first(xfo) in ("deny", "sameorigin"):
        return Criterion("x_frame_options", None, PASSED, f"X-Frame-Options {_first(xfo)}")
    ancestors = directives(csp or "").get("frame-ancestors")
    if ancestors and set(ancestors) <= {"'none'", "'self'"}:
        return Criterion("x_frame_options", None, PASSED,
                         f"CSP frame-ancestors {' '.join(ancestors)} (no X-Frame-Options)")
    shown = f"X-Frame-Options {xfo!r}" if xfo else "no X-Frame-Options"
    return Criterion("x_frame_options", None, FAILED,
                     f"{shown} and no CSP frame-ancestors 'none'/'self': pages can be framed",
                     evidence={"x-frame-options": xfo})


def x_content_type_options(value: str | None) -> Criterion:
    if _first(value) == "nosniff":
        return Criterion("x_content_type_options", None, PASSED, "X-Content-Type-Options nosniff")
    shown = f"X-Content-Type-Options is {value!r}, not nosniff" if value else \
        "no X-Content-Type-Options"
    return Criterion("x_content_type_options", None, FAILED, shown)


def referrer_policy(value: str | None) -> Criterion:
    tokens = [t.strip().lower() for t in (value or "").split(",") if t.strip()]
    if not tokens:
        return Criterion("referrer_policy", None, INFO,
                         "no Referrer-Policy (browsers use strict-origin-when-cross-origin; "
                         "no-referrer or same-origin is recommended)")
    last = tokens[-1]
    if last in GOOD_REFERRER:
        return Criterion("referrer_policy", None, PASSED, f"Referrer-Policy {last}")
    if last in RECOMMEND_REFERRER:
        return Criterion("referrer_policy", None, INFO,
                         f"Referrer-Policy {last} (no-referrer or same-origin is recommended)")
    why = "leaks the URL to other sites" if last in BAD_REFERRER else "is not a known policy"
    return Criterion("referrer_policy", None, WARNING, f"Referrer-Policy {last} {why}")


def http_compression(content_encoding: str | None) -> Criterion:
    encoding = (content_encoding or "").strip().lower()
    if not encoding or encoding == "identity":
        return Criterion("http_compression", Level.GOOD, PASSED, "no HTTP compression",
                         "3.4.1")
    return Criterion("http_compression", HTTP_COMPRESSION.grade("on"), FAILED,
                     f"answers compressed ({encoding}): weigh BREACH against the bandwidth "
                     "saved", HTTP_COMPRESSION.section)


# -- Content-Security-Policy ---------------------------------------------------------------------


def directives(value: str) -> dict[str, list[str]]:
    """Directive -> sources over every policy in the header(s), first occurrence of a name
    in each policy kept (CSP3 2.2.1), sources of repeated policies added up as internet.nl
    does."""
    out: dict[str, list[str]] = {}
    for policy in value.split(","):
        seen: set[str] = set()
        for part in policy.split(";"):
            tokens = part.split()
            if tokens and tokens[0].lower() not in seen:
                seen.add(tokens[0].lower())
                out.setdefault(tokens[0].lower(), []).extend(tokens[1:])
    return out


def _host(source: str) -> tuple[str | None, str | None]:
    """(scheme, host) of a host-source, (None, None) when the source is something else."""
    if _KEYWORD.match(source) or _NONCE_HASH.match(source) or _SCHEME.match(source.lower()):
        return None, None
    match = _HOST.match(source.lower())
    return (match.group("scheme"), match.group("host")) if match else (None, None)


def _own(sources: list[str], domain: str) -> bool:
    """internet.nl's rule for default-src and base-uri: 'none' alone, or 'self' with only
    'report-sample' and hosts of the site's own domain (or below) sharing one base."""
    if sources == ["'none'"]:
        return True
    if "'self'" not in sources:
        return False
    hosts = []
    for source in sources:
        if source in ("'self'", "'report-sample'"):
            continue
        _, host = _host(source)
        if host is None:
            return False
        bare = host[2:] if host.startswith("*.") else host
        if not bare or not (bare == domain or bare.endswith("." + domain)
                            or (host.startswith("*.") and domain.endswith(bare))):
            return False
        hosts.append(bare)
    base = min(hosts, key=len, default="")
    return all(h.endswith(base) for h in hosts)


def _set(sources: list[str] | None) -> bool:
    return bool(sources) and any(s in ("'self'", "'none'") or _host(s)[1] for s in sources or [])


def csp_problems(value: str | None, domain: str) -> list[str]:
    """internet.nl's CSP failures for this header value (empty: the policy passes)."""
    if not value:
        return ["no Content-Security-Policy"]
    parsed = directives(value)
    every = [s for sources in parsed.values() for s in sources]
    problems = [f"{u} allowed" for u in _UNSAFE if u in every]
    hosts = [_host(s) for s in every]
    if any(s.lower() in ("http:", "*") or scheme == "http" for s, (scheme, _) in
           zip(every, hosts, strict=True)):
        problems.append("http: sources allowed")
    if any(s.lower() == "https:" for s in every):
        problems.append("bare https: source (any site)")
    if any(host and not scheme and host not in ("*",) for scheme, host in hosts):
        problems.append("host source without a scheme")
    if any(host in ("*", "127.0.0.1") for _, host in hosts):
        problems.append("wildcard or 127.0.0.1 host")
    for directive in ("object-src", "script-src"):
        if any(s.lower() in ("data:", "*") for s in parsed.get(directive,
                                                               parsed.get("default-src", []))):
            problems.append(f"data: allowed for {directive}")
    problems += _required_directives(parsed, domain)
    return problems


def _required_directives(parsed: Mapping[str, list[str]], domain: str) -> list[str]:
    problems = []
    default_ok = _own(parsed.get("default-src", []), domain)
    if not default_ok:
        problems.append("default-src missing or not limited to 'none'/'self' and own hosts")
    if not default_ok and not _set(parsed.get("frame-src")):
        problems.append("frame-src missing")
    if not any(s in ("'self'", "'none'") for s in parsed.get("frame-ancestors", [])):
        problems.append("frame-ancestors missing (or not 'self'/'none')")
    if not _own(parsed.get("base-uri", []), domain):
        problems.append("base-uri missing or not limited to 'none'/'self' and own hosts")
    if not _set(parsed.get("form-action")):
        problems.append("form-action missing")
    return problems


def csp(value: str | None, domain: str) -> Criterion:
    problems = csp_problems(value, domain.lower().rstrip("."))
    if not problems:
        return Criterion("csp", None, PASSED, "Content-Security-Policy meets internet.nl's rules")
    return Criterion("csp", None, FAILED, "Content-Security-Policy: " + "; ".join(problems),
                     evidence={"problems": problems})


def header_criteria(headers: Mapping[str, str], domain: str) -> list[Criterion]:
    """Every header criterion of one HTTPS answer (header names in lower case)."""
    policy = headers.get("content-security-policy")
    return [x_frame_options(headers.get("x-frame-options"), policy),
            x_content_type_options(headers.get("x-content-type-options")),
            csp(policy, domain), referrer_policy(headers.get("referrer-policy")),
            http_compression(headers.get("content-encoding"))]
