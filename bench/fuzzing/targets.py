"""One fuzz target per family of outside data, driving the entry points the hypothesis tests use.

The contract is the one tests/reliability/test_fuzz.py and tests/unit/parsers/test_parsers_fuzz.py
state: a parser raises only its documented error type (ParseError, AdvisoryError, ConfigError;
TOMLDecodeError surfaces as ConfigError through `load_fleet`), with a message, and a `judge`
raises nothing. Any other exception escapes the target and libFuzzer reports it as a crash with
the input saved.

Targets whose input is one document (text or JSON) read it with `values.text_input` /
`values.json_input` and have a seed corpus (`corpus()`) in mode 0; targets that need several
values (a DNS zone for SPF evaluation, TLSA records and a chain) draw them all from one
`Source` and reach the fixture seeds through its "edit a seed" choices.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import json
import shutil
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchtower.errors import ConfigError  # not fuzzed: the error type the loaders raise

from . import seeds
from .values import (
    NOT_JSON,
    Source,
    Vocab,
    edit_bytes,
    edit_json,
    json_from,
    json_input,
    seed_file,
    split_mode,
    text_from,
    text_input,
)

# The modules under test are imported by `load()`, inside atheris' instrumentation when fuzzing.
advisories: Any = None
config: Any = None
storage: Any = None
P: Any = None  # watchtower.parsers
Package: Any = None


def load() -> None:
    """Import the code under test (call inside `atheris.instrument_imports()` to fuzz it)."""
    global advisories, config, storage, P, Package
    from watchtower.checks import storage as sto

    import watchtower.parsers as parsers_pkg
    from watchtower import config as cfg
    from watchtower.inventory import advisories as adv
    from watchtower.inventory.storepaths import Package as Pkg
    from watchtower.parsers import (  # noqa: F401 - submodules become attributes of the package
        caa,
        dkim,
        dmarc,
        jrd,
        matrix,
        mtasts,
        nodeinfo,
        securitytxt,
        spf,
        tlsa,
        tlsrpt,
    )
    advisories, config, storage, P, Package = adv, cfg, sto, parsers_pkg, Pkg


def only(errors: tuple[type[BaseException], ...], fn: Callable[..., Any], *args: Any,
         **kwargs: Any) -> Any:
    """Call `fn`; its documented errors (with a message) are fine, anything else escapes."""
    try:
        return fn(*args, **kwargs)
    except errors as exc:
        if not str(exc):
            raise AssertionError(f"{type(exc).__name__} without a message") from exc
        return None


def parse(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return only((P.ParseError,), fn, *args, **kwargs)


def encode(text: str) -> bytes:
    """Text back to bytes: surrogates from undecodable bytes become those bytes again."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], None]
    corpus: Callable[[], list[bytes]] = field(default=lambda: [])
    what: str = ""


TARGETS: dict[str, Target] = {}


def target(name: str, what: str, corpus: Callable[[], list[bytes]] | None = None
           ) -> Callable[[Callable[[bytes], None]], Callable[[bytes], None]]:
    def register(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
        TARGETS[name] = Target(fn, corpus or (lambda: []), what)
        return fn
    return register


def text_corpus(texts: Callable[[], list[str]]) -> Callable[[], list[bytes]]:
    return lambda: [seed_file(encode(t)) for t in texts()]


def json_corpus(docs: Callable[[], list[Any]]) -> Callable[[], list[bytes]]:
    return lambda: [seed_file(json.dumps(d).encode()) for d in docs()]


DOMAINS = ["example.com", "_spf.example.com", "a.example.net", "x.y.example", "localhost",
           "exa mple.com", "example..com", "-bad.example", "%{d}", "%{i}.x.example.com",
           "x" * 64 + ".com", "github.io", "co.uk", "xn--", "ü.example"]

# -- SPF --------------------------------------------------------------------------------------

SPF_TOKENS = ["v=spf1", " ", "+", "-", "~", "?", "all", "include", "a", "mx", "ptr", "ip4",
              "ip6", "exists", "redirect", "exp", "=", ":", "/", "//", "0", "24", "32", "33",
              "64", "128", "129", "024", "192.0.2.1", "256.1.1.1", "2001:db8::", "::1",
              "fe80::1%eth0", "%{d}", "%{i}", "%{ir}", "%{d2}", "%{d0}", "%{c}", "%{l-}", "%{S}",
              "%%", "%_", "%-", "%", "%{", "}", ".", "..", "_", "foo=bar", "\t", "ä", *DOMAINS]
SPF_CHECKS = ("mail.spf.record", "mail.spf.lookups", "mail.spf.policy", "mail.parked")


@functools.cache
def spf_seeds() -> list[str]:
    return seeds.strings(SPF_CHECKS, lambda s: s.lower().startswith("v=spf1"))


@target("spf", "SPF record parse", text_corpus(spf_seeds))
def fuzz_spf(data: bytes) -> None:
    text = text_input(data, SPF_TOKENS, spf_seeds())
    record = parse(P.spf.parse, text)
    if record is not None:
        assert record.text == text
        assert record.dns_term_count >= 0


SPF_NAMES = ["example.com", "a.example.com", "b.example.net", "c.example.org", "d.example.com"]
SPF_EVAL_TOKENS = [*SPF_TOKENS, *(f"include:{n}" for n in SPF_NAMES),
                   *(f"redirect={n}" for n in SPF_NAMES), "exists:%{i}.example.com", "a:%{d}",
                   "mx:%{d2}", "ip4:192.0.2.1", "ip4:1.2.3.4/40", "-all", "~all", "+all"]


@target("spf-eval", "SPF evaluation over a fuzzed zone (include/redirect/macros/limits)")
def fuzz_spf_eval(data: bytes) -> None:
    src = Source(data)
    zone: dict[tuple[str, str], Any] = {}
    for name in SPF_NAMES:
        kind = src.between(0, 4)
        if kind == 4:  # no such name
            continue
        if kind == 3:
            zone[(name, "TXT")] = P.spf.LookupFailure("timeout")
            continue
        txt = [text_from(src, SPF_EVAL_TOKENS, spf_seeds()) for _ in range(src.between(0, 2))]
        zone[(name, "TXT")] = ["v=spf1 " + t if kind == 1 else t for t in txt]
        zone[(name, "A")] = src.pick([[], ["192.0.2.1"], ["bad"]])
        zone[(name, "AAAA")] = src.pick([[], ["2001:db8::1"]])
        zone[(name, "MX")] = src.pick([[], ["10 mx.example.com."], ["mx.example.com"],
                                       [f"mx{i}.example.com" for i in range(12)]])
        if src.between(0, 3) == 3:
            zone[(name, src.pick(["A", "AAAA", "MX", "PTR"]))] = P.spf.LookupFailure("x")
    calls: list[tuple[str, str]] = []

    def lookup(name: str, rdtype: str) -> Any:
        calls.append((name, rdtype))
        value = zone.get((name, rdtype))
        if isinstance(value, P.spf.LookupFailure):
            raise value
        if value is None:
            return P.spf.LookupAnswer([], nxdomain=not any(n == name for n, _ in zone))
        return P.spf.LookupAnswer(value)

    start = src.pick(SPF_NAMES)
    result = P.spf.evaluate(start, lookup, max_queries=30, max_depth=6)
    assert len(calls) <= 30 and result.queries == len(calls)
    assert result.effective_all in (None, "+", "-", "~", "?")
    result.to_dict()


# -- DMARC ------------------------------------------------------------------------------------

DMARC_TOKENS = ["v=DMARC1", "v", "DMARC1", ";", "; ", "=", " = ", "p", "sp", "np", "pct", "rua",
                "ruf", "adkim", "aspf", "fo", "rf", "ri", "t", "psd", "none", "quarantine",
                "reject", "r", "s", "y", "n", "u", "0", "1", "d", "100", "101", "4294967296", ":",
                ",", "afrf", "mailto:", "mailto:d@example.com", "https://r.example.com/x", "!",
                "!10m", "!5k", "!x", "%40", "%zz", "@", "example.com", "\t", "é", "foo",
                *DOMAINS]
DMARC_CHECKS = ("mail.dmarc.record", "mail.dmarc.policy", "mail.dmarc.external-report",
                "mail.parked")


@functools.cache
def dmarc_seeds() -> list[str]:
    return seeds.strings(DMARC_CHECKS, lambda s: s.lower().startswith("v=dmarc1"))


@target("dmarc", "DMARC record parse, external destinations, organizational domain",
        text_corpus(dmarc_seeds))
def fuzz_dmarc(data: bytes) -> None:
    text = text_input(data, DMARC_TOKENS, dmarc_seeds())
    record = parse(P.dmarc.parse, text)
    if record is not None:
        assert record.p in ("none", "quarantine", "reject") and 0 <= record.pct <= 100
        parse(P.dmarc.external_destinations, "mail.example.com", record)
    P.dmarc.select_dmarc([text])
    P.dmarc.is_report_authorization([text])
    org = parse(P.dmarc.organizational_domain, text)
    assert org is None or (org == org.lower() and not org.endswith("."))


# -- DKIM -------------------------------------------------------------------------------------

DKIM_TOKENS = ["v=DKIM1", "v", "k", "h", "n", "p", "s", "t", "=", ";", " ", "rsa", "ed25519",
               "RSA", "x", "sha1", "sha256", ":", "y", "email", "*", "AAAA", "====", "+/",
               "\r\n ", "\t", "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ", "!", "é", "p=", "k=rsa;",
               "k=ed25519;", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="]


@functools.cache
def dkim_seeds() -> list[str]:
    return seeds.strings(("mail.dkim",), lambda s: "p=" in s)


@target("dkim", "DKIM key record parse (keys decoded and sized)", text_corpus(dkim_seeds))
def fuzz_dkim(data: bytes) -> None:
    record = parse(P.dkim.parse, text_input(data, DKIM_TOKENS, dkim_seeds()))
    if record is not None:
        assert record.revoked == (record.public_key == b"")
        assert record.key_bits is None or record.key_type_known


# -- TLSA -------------------------------------------------------------------------------------

TLSA_TOKENS = ["3", "2", "1", "0", "256", " ", "ab", "abc", "zz", "00", "ff" * 32, "-1", "\t"]


@functools.cache
def tlsa_record_seeds() -> list[str]:
    return seeds.strings(("mail.dane",), lambda s: s[:1].isdigit() and s.count(" ") >= 3)


@functools.cache
def tlsa_chains() -> list[list[bytes]]:
    return [[bytes.fromhex(c) for c in chain] for chain in seeds.members(("mail.dane",),
                                                                         "chain_der")]


@target("tlsa", "TLSA record parse, chain matching, rollover assessment")
def fuzz_tlsa(data: bytes) -> None:
    src = Source(data)
    records = []
    for _ in range(src.between(0, 4)):
        if src.between(0, 2) < 2:
            rec = parse(P.tlsa.parse_record, text_from(src, TLSA_TOKENS, tlsa_record_seeds()))
            if rec is not None:
                records.append(rec)
        else:
            fields = (src.between(0, 255) for _ in range(3))
            records.append(P.tlsa.TlsaRecord(*fields, src.bytes(70)))
    chains = tlsa_chains()
    if chains and src.between(0, 3) < 3:
        chain = [edit_bytes(src, der) for der in src.pick(chains)][:src.between(0, 3) or None]
    else:
        chain = [src.bytes(400) for _ in range(src.between(0, 3))]
    result = parse(P.tlsa.match_chain, records, chain)
    assert result is None or len(result.matches) == len(records)
    verdict = parse(P.tlsa.assess_rollover, records, chain)
    assert verdict is None or verdict.reason


# -- CAA --------------------------------------------------------------------------------------

CAA_TOKENS = ["letsencrypt.org", "ca.example.net", ";", " ", "=", "accounturi", "https://x/1",
              "validationmethods", "dns-01", ",", "-", "_", "mailto:a@example.com", "é", "\t",
              "policy", "ev", "nope", "http-01", "cansignhttpexchanges", "yes"]
CAA_TAGS = ["issue", "issuewild", "iodef", "ISSUE", "tbs", "contactemail", "contactphone",
            "issuemail", "issuevmc"]


@functools.cache
def caa_value_seeds() -> list[str]:
    return [r["value"] for records in seeds.members(("dns.caa",), "records")
            if isinstance(records, list) for r in records
            if isinstance(r, dict) and isinstance(r.get("value"), str)]


@target("caa", "CAA record parse and issuance authorization")
def fuzz_caa(data: bytes) -> None:
    src = Source(data)
    records = []
    for _ in range(src.between(1, 4)):
        flags = src.pick([0, 128, 1, 255, src.between(-5, 300)])
        tag = src.pick(CAA_TAGS) if src.between(0, 3) else src.text(17)
        value: str | bytes = (text_from(src, CAA_TOKENS, caa_value_seeds()) if src.between(0, 3)
                              else src.bytes(30))
        record = parse(P.caa.parse, flags, tag, value)
        assert record is None or record.tag == tag.lower()
        records.append((flags, tag, value))
    domain = src.pick(["letsencrypt.org", "ca.example.net", "", "LETSENCRYPT.ORG."])
    assert P.caa.authorizes(records, domain, wildcard=src.between(0, 1) == 1) in (True, False)


# -- MTA-STS, TLS-RPT, security.txt ---------------------------------------------------------

STS_TOKENS = ["v=STSv1", "id", "=", ";", " ", "20240101", "abc", "ext", "x=y", "\t", "é",
              "id=" + "1" * 33]
POLICY_LINES = ["version: STSv1", "version: STSv2", "mode: enforce", "mode: testing",
                "mode: none", "mode: bogus", "mx: mail.example.com", "mx: *.example.net",
                "mx: *.*.x", "mx: ", "mx: 1.2.3.4", "max_age: 86400", "max_age: 31557601",
                "max_age: -5", "max_age: 99999999999", "foo: bar", "", "junk", "é: x",
                "version:STSv1", "x" * 40 + ": y", "\n", "\r\n", "\r", ":", " "]
MTA_STS_CHECKS = ("mail.mta-sts",)


@functools.cache
def sts_record_seeds() -> list[str]:
    return seeds.strings(MTA_STS_CHECKS, lambda s: s.startswith("v=STSv1"))


@functools.cache
def sts_policy_seeds() -> list[str]:
    return seeds.strings(MTA_STS_CHECKS, lambda s: s.startswith("version:"))


@target("mtasts", "MTA-STS TXT record, policy file (text or bytes), MX pattern matching")
def fuzz_mtasts(data: bytes) -> None:
    src = Source(data)
    record = parse(P.mtasts.parse_record, text_from(src, STS_TOKENS, sts_record_seeds()))
    assert record is None or 1 <= len(record.id) <= 32
    text = text_from(src, POLICY_LINES, sts_policy_seeds(), seps=("\n", "\r\n", ""))
    body: str | bytes = text if src.between(0, 1) == 0 else encode(text) + src.bytes(3)
    policy = parse(P.mtasts.parse_policy, body)
    if policy is not None:
        assert 0 <= policy.max_age <= P.mtasts.MAX_AGE_LIMIT
        assert policy.mode == "none" or policy.mx
        host = text_from(src, ["mx", ".", "example.com", "*", "a", "é", ""], [])
        for pattern in policy.mx:
            assert P.mtasts.mx_matches(pattern, pattern.replace("*", "x")) is True
            assert P.mtasts.mx_matches(pattern, host) in (True, False)


TLSRPT_TOKENS = ["v=TLSRPTv1", "rua", "=", ";", ",", " ", "mailto:", "tls@example.com",
                 "https://", "r.example.com", "/x", ":99999", "ftp://x.example.com", "%2C", "%",
                 "ext", "é", "\t"]


@functools.cache
def tlsrpt_seeds() -> list[str]:
    return seeds.strings(("mail.tls-rpt",), lambda s: s.startswith("v=TLSRPT"))


@target("tlsrpt", "TLS-RPT record parse", text_corpus(tlsrpt_seeds))
def fuzz_tlsrpt(data: bytes) -> None:
    record = parse(P.tlsrpt.parse, text_input(data, TLSRPT_TOKENS, tlsrpt_seeds()))
    assert record is None or record.rua


SEC_LINES = ["Contact: mailto:security@example.com", "Contact: security@example.com",
             "Contact: http://example.com", "Expires: 2030-01-01T00:00:00Z",
             "Expires: 2020-01-01T00:00:00Z", "Expires: 2030-02-30T00:00:00Z", "Expires: soon",
             "Preferred-Languages: en, de", "Preferred-Languages: ,", "Policy: https://x.test/",
             "Encryption: openpgp4fpr:abc", "# comment", "", "junk", "- Contact: mailto:a@b.c",
             "-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA256",
             "-----BEGIN PGP SIGNATURE-----", "-----END PGP SIGNATURE-----", "X: y", ":", "é: x"]


@functools.cache
def securitytxt_seeds() -> list[str]:
    return seeds.strings(("web.security-txt",), lambda s: ":" in s and "\n" in s)


@target("securitytxt", "security.txt parse (text or bytes, signed or not)",
        text_corpus(securitytxt_seeds))
def fuzz_securitytxt(data: bytes) -> None:
    text = text_input(data, SEC_LINES, securitytxt_seeds(), seps=("\n", "\r\n"))
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) if len(data) % 2 else dt.datetime(2026, 11, 1)
    body: str | bytes = encode(text) if len(data) % 3 == 0 else text
    result = parse(P.securitytxt.parse, body, now=now)
    if result is not None:
        assert result.has_contact or any("Contact" in p for p in result.problems)


# -- NodeInfo, WebFinger JRD, host-meta -----------------------------------------------------

NODEINFO = Vocab(
    keys=("links", "rel", "href", "version", "software", "name", "protocols", "services",
          "inbound", "outbound", "openRegistrations", "usage", "users", "total",
          "activeHalfyear", "activeMonth", "activeWeek", "localPosts", "localComments",
          "metadata", "repository", "homepage", "instance", "description"),
    strings=("http://nodeinfo.diaspora.software/ns/schema/2.0",
             "http://nodeinfo.diaspora.software/ns/schema/2.1",
             "http://nodeinfo.diaspora.software/ns/schema/2.2",
             "http://nodeinfo.diaspora.software/ns/schema/2.9",
             "http://nodeinfo.diaspora.software/ns/schema/1.0#",
             "http://nodeinfo.diaspora.software/ns/schema/x", "activitypub", "nostr", "mastodon",
             "2.0", "2.1", "2.2", "https://example.test/nodeinfo/2.0", "atom1.0", "rss2.0",
             "smtp", "", "Mastodon", "a\nb"))
NODEINFO_CHECKS = ("fedi.nodeinfo", "fedi.health")


@functools.cache
def nodeinfo_seeds() -> list[Any]:
    return seeds.members(NODEINFO_CHECKS, "json")


@target("nodeinfo", "NodeInfo discovery, schema choice, 2.0-2.2 validation",
        json_corpus(nodeinfo_seeds))
def fuzz_nodeinfo(data: bytes) -> None:
    doc = json_input(data, NODEINFO, nodeinfo_seeds())
    if doc is NOT_JSON:
        return
    links = parse(P.nodeinfo.parse_discovery, doc)
    if links is not None:
        P.nodeinfo.choose_schema(links)
    schemas = ["2.0", "2.1", "2.2"]
    if isinstance(doc, dict) and isinstance(doc.get("version"), str):
        schemas.append(doc["version"])
    for schema in schemas:
        result = P.nodeinfo.validate(doc, schema)  # documented: never raises
        assert isinstance(result.problems, tuple)
        json.dumps(result.summary())


JRD = Vocab(
    keys=("subject", "aliases", "links", "rel", "type", "href", "template", "properties",
          "titles"),
    strings=("self", "application/activity+json", "Application/LD+JSON; "
             'profile="https://www.w3.org/ns/activitystreams"', "acct:a@example.test", "lrdd",
             "http://webfinger.net/rel/profile-page", "https://s/users/w", ""))
JRD_CHECKS = ("fedi.webfinger", "fedi.actor", "fedi.authorized-fetch", "fedi.host-meta")


@functools.cache
def jrd_seeds() -> list[Any]:
    return [d for d in seeds.members(JRD_CHECKS, "json") if isinstance(d, dict)
            and ("links" in d or "subject" in d)]


@target("jrd", "WebFinger JRD from JSON bytes and from decoded values", json_corpus(jrd_seeds))
def fuzz_jrd(data: bytes) -> None:
    mode, rest = split_mode(data, 4)
    if mode == 0:
        parsed = parse(P.jrd.parse_jrd_bytes, rest)
    else:
        parsed = parse(P.jrd.parse_jrd, json_input(data, JRD, jrd_seeds()))
    if parsed is not None:
        parsed.link("self", P.jrd.ACTIVITY_TYPES)
        parsed.link("lrdd")
        parsed.actor_href()


XRD_PIECES = ['<?xml version="1.0"?>', '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">',
              "<XRD>", "</XRD>", '<Link rel="lrdd" template="https://x/{uri}"/>', "<Link/>",
              "<Subject>s</Subject>", "<!DOCTYPE x>", "<!ENTITY a 'b'>", "&a;", "<", ">", "{",
              '"', "<Link rel=''>", "\x00", "\udcff", "<!doctype", "<![CDATA[", "]]>", "&#0;",
              "&#x110000;", "<?xml-stylesheet?>", "<x:Link xmlns:x='y'>", "</Link>", "{}",
              '{"links": [', "]}", "\ufeff"]


@functools.cache
def host_meta_seeds() -> list[str]:
    return [*seeds.strings(("fedi.host-meta",), lambda s: s.lstrip().startswith(("<", "{"))),
            *(json.dumps(d) for d in jrd_seeds())]


@target("hostmeta", "host-meta as XRD XML or JRD JSON (DTD refused)",
        text_corpus(host_meta_seeds))
def fuzz_host_meta(data: bytes) -> None:
    body = encode(text_input(data, XRD_PIECES, host_meta_seeds(), seps=("",)))
    content_type = ("", "application/xrd+xml", "application/json")[len(data) % 3]
    parse(P.jrd.parse_host_meta, body, content_type)
    parse(P.jrd.parse_jrd_bytes, body)


# -- Matrix -----------------------------------------------------------------------------------

MATRIX = Vocab(
    keys=("m.server", "m.homeserver", "base_url", "server_name", "valid_until_ts",
          "verify_keys", "old_verify_keys", "signatures", "key", "ed25519:a", "ed25519:",
          "ed25519:a_test", "example.test", "expired_ts", "m.identity_server"),
    strings=("example.test", "example.test:8448", "[::1]:8448", "[::1", "1.2.3.4:99999",
             "https://matrix.example.test", "http://x", "ed25519:auto", "AAAA", "!!!", ":",
             "[]", "[::ffff:1.2.3.4]:1", "a:00443", "a:",
             "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI",
             "CcfSoYrJaYnWGrO8qY/3U7y6CRyc1dk0jDnda3/N6qgNtqvuSHJxHrzSkJnHgN6tucvy/w47KsP5gtWjOghtAg"))
MATRIX_CHECKS = ("matrix.keys", "matrix.discovery", "matrix.client", "matrix.version")


@functools.cache
def matrix_seeds() -> list[Any]:
    return seeds.members(MATRIX_CHECKS, "json")


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in _strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings_in(v)]
    return []


@target("matrix", "Matrix server names, well-knowns, signed server-key responses",
        json_corpus(matrix_seeds))
def fuzz_matrix(data: bytes) -> None:
    doc = json_input(data, MATRIX, matrix_seeds())
    if doc is NOT_JSON:
        return
    for name in _strings_in(doc)[:20]:
        server = parse(P.matrix.parse_server_name, name)
        assert server is None or P.matrix.parse_server_name(str(server)) == server
    parse(P.matrix.parse_well_known_server, doc)
    parse(P.matrix.parse_well_known_client, doc)
    report = P.matrix.check_server_keys(doc)  # documented: never raises
    assert isinstance(report.problems, list)
    assert set(report.verified_keys) <= set(report.ed25519_keys)


# -- Garage admin API (the storage.* judgements) --------------------------------------------

GARAGE = Vocab(
    keys=("status", "partitions", "partitionsAllOk", "partitionsQuorum", "storageNodes",
          "storageNodesOk", "connectedNodes", "knownNodes", "nodes", "hostname", "id", "isUp",
          "lastSeenSecsAgo", "dataPartition", "available", "total", "draining",
          "layoutVersion", "metadataPartition", "garageVersion"),
    strings=("healthy", "degraded", "unavailable", "garage1", "n1", ""))
FETCH_STATUSES = (200, 400, 401, 403, 404, 500, 503, None)


def _server_answer(src: Source, recorded: Any) -> dict[str, Any]:
    """A `checks.common.fetch` record: our shape, the server's status, body and JSON."""
    fetched: dict[str, Any] = dict(recorded) if isinstance(recorded, dict) else {}
    fetched["json"] = json_from(src, GARAGE, [fetched.get("json", {})])
    how = src.between(0, 5)
    if how == 1:
        fetched["status"] = src.pick(FETCH_STATUSES)
    elif how == 2:
        fetched["status"] = src.between(-1, 1000)
    elif how == 3:
        fetched["problem"] = src.text(20)
    elif how == 4:
        fetched["text"] = src.text(40)
    elif how == 5:
        del fetched["json"]
    return fetched


@target("garage", "storage.health / storage.nodes / storage.roundtrip judge on server JSON")
def fuzz_garage(data: bytes) -> None:
    src = Source(data)
    which = src.between(0, 2)
    if which == 0:
        base = src.pick(seeds.facts("storage.health"))
        facts: dict[str, Any] = {"health": _server_answer(src, base.get("health")),
                                 "cluster": _server_answer(src, base.get("cluster"))}
        verdict = storage.Health().judge(facts)
    elif which == 1:
        base = src.pick(seeds.facts("storage.nodes"))
        verdict = storage.Nodes().judge({"status": _server_answer(src, base.get("status"))})
    else:
        base = src.pick(seeds.facts("storage.roundtrip"))
        edited = edit_json(src, base.get("steps", []), Vocab(("ok", "error", "status", "ms")))
        steps = []
        for step in edited if isinstance(edited, list) else []:
            if isinstance(step, dict):  # the step's name is ours (net/s3.py); the rest is not
                steps.append({**step, "step": src.pick(["put", "get", "delete"])})
        verdict = storage.RoundTrip().judge({**base, "steps": steps})
    assert verdict.status is not None


# -- vulnix / OSV feeds, whitelists ---------------------------------------------------------

FEEDS = Vocab(
    keys=("pname", "version", "affected_by", "cvssv3_basescore", "description", "whitelisted",
          "vulns", "id", "aliases", "summary", "details", "severity", "type", "score",
          "database_specific", "affected", "package", "name", "ecosystem", "ranges", "events",
          "introduced", "fixed", "last_affected", "limit", "versions", "ecosystem_specific",
          "derivation", "modified", "published"),
    strings=("CVE-2024-0001", "openssl", "mastodon", "3.0.1", "0", "4.3.0", "ECOSYSTEM", "SEMVER",
             "GIT", "CVSS_V3", "CVSS_V4", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
             "CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:C/C:N/I:N/A:N", "HIGH", "critical", "CRITICAL",
             "1.0", "1.0.0-rc1", "v2", ""))
WHITELIST = Vocab(keys=("CVE-2024-0001", "openssl", "until", "reason", "package", "version",
                        "cve", "issue_url", "comment"),
                  strings=("2030-01-01", "2020-01-01", "not a date", "because", "openssl"))
CVSS_TOKENS = ["CVSS:3.1/", "CVSS:3.0/", "CVSS:4.0/", "AV:", "AC:", "PR:", "UI:", "S:", "C:",
               "I:", "A:", "N", "L", "A", "P", "H", "R", "U", "C", "X", "/", "E:F", "RL:O", ":"]


@functools.cache
def cvss_seeds() -> list[str]:
    return [s for s in _strings_in(seeds.feed_documents()) if s.startswith("CVSS:")] + [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"]


@target("advisories", "vulnix/OSV feeds, CVSS vectors, whitelists, matching to packages")
def fuzz_advisories(data: bytes) -> None:
    src = Source(data)
    feed = json_from(src, FEEDS, seeds.feed_documents())
    found = only((advisories.AdvisoryError,), advisories.parse_feed, feed, "fuzz")
    score = advisories.cvss3_base_score(text_from(src, CVSS_TOKENS, cvss_seeds(), seps=("",)))
    assert score is None or 0.0 <= score <= 10.0
    whitelist = json_from(src, WHITELIST, seeds.whitelist_documents())
    entries = only((advisories.AdvisoryError,), advisories.parse_whitelist, whitelist, "fuzz")
    if found:
        versions = ["1.0", "0", "4.3.1", "3.0.1", "", "x", "1.0.0-rc1"]
        pkgs = [Package(name=a.package, version=v) for a in found
                for v in (*(a.versions or ()), src.pick(versions))]
        advisories.match(found, pkgs, entries or [])


# -- the fleet file ---------------------------------------------------------------------------

TOML_PIECES = ["[probe]\n", "[settings]\n", "[[zones]]\n", "[[services]]\n", "[[hosts]]\n",
               "[[mail_domains]]\n", "[dashboard]\n", "[remediation]\n", "[[maintenance]]\n",
               'name = "a.test"\n', 'kind = "mastodon"\n', 'kind = "garage"\n',
               'base_url = "https://a.test/"\n', "[checks.web]\n", "interval = 5\n",
               'admin_token = { "$env" = "X" }\n', 'ssh_key = { "$file" = "k" }\n', "a = [1, 2\n",
               '"\n', "= \n", "x = 1979-05-27T07:32:00Z\n", "[a.b.c]\n", "\\u0000", "'''\n",
               "\x7f", 'state_dir = "rel"\n', 'manifest = "m.json"\n', 'ca_bundle = "a\\u0000b"\n',
               'database = "sqlite:///rel.db"\n', "concurrency = -1\n", "nan", "inf", "[", "]",
               "{", "}", ",", "=", '"', "'", "\n", "#"]


@functools.cache
def fleet_file() -> Path:
    """Where fleet-text writes each input for load_fleet; removed when the process exits."""
    directory = tempfile.mkdtemp(prefix="wt-fuzz-fleet-")
    atexit.register(shutil.rmtree, directory, True)
    return Path(directory) / "fleet.toml"


@target("fleet-text", "fleet file bytes through load_fleet (tomllib + parse_fleet + paths)",
        text_corpus(seeds.fleet_texts))
def fuzz_fleet_text(data: bytes) -> None:
    text = text_input(data, TOML_PIECES, seeds.fleet_texts(), seps=("", "\n"))
    fleet_file().write_bytes(encode(text))
    fleet = only((ConfigError,), config.load_fleet, fleet_file())
    if fleet is not None:
        fleet.targets()
        list(fleet.secrets())


SECTIONS = ("probe", "store", "metrics", "settings", "zones", "mail_domains", "services", "hosts",
            "mail_hosts", "endpoints", "dns_apis", "checks", "remediation", "dashboard",
            "notifications", "maintenance", "reports")
FLEET = Vocab(
    keys=(*SECTIONS, "name", "kind", "base_url", "admin_url", "admin_token", "host", "tags",
          "url", "nameservers", "resolver", "concurrency", "timeout", "interval", "cron",
          "policy", "$env", "$file", "address", "ssh", "ssh_key", "ssh_user", "host_key",
          "email", "apprise", "password", "metrics_auth", "metrics_listen", "database",
          "mail_host", "channel", "start", "end", "targets", "web.tls.certificate", "dns",
          "mastodon", "garage", "s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key",
          "api_key", "zones", "customer", "dkim_selectors", "sending", "manifest", "state_dir",
          "ca_bundle", "users_file", "oidc", "secrets_file", "advisory_feeds"),
    strings=("example.test", "https://example.test/", "mastodon", "garage", "matrix", "auto",
             "approve", "dry-run", "off", "127.0.0.1:53", "0 3 * * *", "* * *", "HOME",
             "/nonexistent", "web.*", "1h", "2030-01-01T00:00:00Z", "rel/path", "a\x00b",
             "sqlite:///rel.db", "watchtower@web1.example.org:22"))
TOML_SCALARS = (dt.datetime(1979, 5, 27, 7, 32, tzinfo=dt.UTC), dt.datetime(1979, 5, 27),
                dt.date(1979, 5, 27), dt.time(7, 32), float("nan"), "")


def tomlish(src: Source, value: Any) -> Any:
    """A JSON-like value as tomllib could return it: no null, dates and times possible."""
    if value is None:
        return src.pick(TOML_SCALARS)
    if isinstance(value, dict):
        return {k: tomlish(src, v) for k, v in value.items()}
    if isinstance(value, list):
        return [tomlish(src, v) for v in value]
    return value


@target("fleet-dict", "TOML-shaped dicts biased to the schema's keys through parse_fleet")
def fuzz_fleet_dict(data: bytes) -> None:
    src = Source(data)
    doc = tomlish(src, json_from(src, FLEET, fleet_dicts()))
    if not isinstance(doc, dict):
        doc = {"probe": doc}
    fleet = only((ConfigError,), config.parse_fleet, doc, "fuzz.toml")
    if fleet is not None:
        fleet.targets()
        list(fleet.secrets())


@functools.cache
def fleet_dicts() -> list[Any]:
    return [tomllib.loads(t) for t in seeds.fleet_texts()]


# -- every target in one (the short CI run) ---------------------------------------------------

NAMES = sorted(TARGETS)


def fuzz_all(data: bytes) -> None:
    """The first byte picks the target, the rest is its input."""
    if data:
        TARGETS[NAMES[data[0] % len(NAMES)]].run(data[1:])


def corpus_all() -> list[bytes]:
    return [bytes([i]) + seed for i, name in enumerate(NAMES) for seed in TARGETS[name].corpus()]


TARGETS["all"] = Target(fuzz_all, corpus_all, "every target, the first byte chooses")
