"""Property-based fuzzing of the parsers of outside data that tests/unit/parsers does not cover.

tests/unit/parsers/test_parsers_fuzz.py already fuzzes SPF, DMARC, DKIM, TLSA, CAA, MTA-STS,
TLS-RPT and security.txt. This file completes the set: NodeInfo, WebFinger JRD and host-meta,
Matrix well-known and key responses, the Garage admin-API judgements, vulnix/OSV feeds and
whitelists, and the fleet file (arbitrary TOML text, and arbitrary TOML-shaped dicts biased
towards the real schema's keys).

The contract under test: whatever arrives, a parser raises only its module's documented error
type (ParseError, AdvisoryError, ConfigError, tomllib.TOMLDecodeError) and a `judge` raises
nothing. Anything else would turn hostile input into a crashed probe or a crashed daemon.

Example count: WATCHTOWER_FUZZ_EXAMPLES (default 200, for CI); the long run is
`WATCHTOWER_FUZZ_EXAMPLES=100000 pytest tests/reliability/test_fuzz.py -s`. Each test prints its
example count and rate.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from watchtower.checks import storage

from watchtower.config import Secret, load_fleet, parse_fleet
from watchtower.errors import ConfigError
from watchtower.inventory import advisories
from watchtower.inventory.storepaths import Package
from watchtower.parsers import ParseError, jrd, matrix, nodeinfo

EXAMPLES = int(os.environ.get("WATCHTOWER_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def _rate(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print how many examples ran and how fast: the figure docs/reliability.md quotes."""
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    print(f"\n{request.node.name}: {EXAMPLES} examples in {took:.1f} s "
          f"({EXAMPLES / took:,.0f}/s)")


def only(errors: tuple[type[BaseException], ...], fn: Callable[..., Any], *args: Any) -> Any:
    """Run a parser; its documented error types are fine, anything else fails the example."""
    try:
        return fn(*args)
    except errors as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return None


# -- JSON values, with keys the parsers look for so the deep branches are reached ------------

def json_values(keys: list[str], strings: list[str] | None = None) -> st.SearchStrategy[Any]:
    key = st.one_of(st.sampled_from(keys), st.text(max_size=8))
    text = st.one_of(st.text(max_size=20), st.sampled_from(strings or [""]))
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                        text)
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(key, inner, max_size=6)), max_leaves=30)


NODEINFO_KEYS = ["links", "rel", "href", "version", "software", "name", "protocols", "services",
                 "inbound", "outbound", "openRegistrations", "usage", "users", "total",
                 "activeHalfyear", "activeMonth", "localPosts", "localComments", "metadata",
                 "repository", "homepage"]
NODEINFO_STRINGS = [nodeinfo.REL_PREFIX + v for v in ("2.0", "2.1", "2.2", "2.9", "x", "1.0")] + [
    "activitypub", "mastodon", "2.0", "2.1", "https://example.test/nodeinfo/2.0", "atom1.0"]


@FUZZ
@given(json_values(NODEINFO_KEYS, NODEINFO_STRINGS),
       st.sampled_from(["2.0", "2.1", "2.2", "1.0", ""]))
def test_nodeinfo_never_crashes(doc: Any, schema: str) -> None:
    links = only((ParseError,), nodeinfo.parse_discovery, doc)
    if links is not None:
        nodeinfo.choose_schema(links)
    result = nodeinfo.validate(doc, schema)  # documented: never raises
    assert isinstance(result.problems, tuple)
    result.summary()


JRD_KEYS = ["subject", "aliases", "links", "rel", "type", "href", "template", "properties"]
JRD_STRINGS = ["self", "application/activity+json", "acct:a@example.test", "lrdd",
               "http://webfinger.net/rel/profile-page"]
XRD_PIECES = ['<?xml version="1.0"?>', '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">',
              "<XRD>", "</XRD>", '<Link rel="lrdd" template="https://x/{uri}"/>', "<Link/>",
              "<Subject>s</Subject>", "<!DOCTYPE x>", "<!ENTITY a 'b'>", "&a;", "<", ">", "{",
              '"', "<Link rel=''>", "\x00", "\udcff"]


@FUZZ
@given(json_values(JRD_KEYS, JRD_STRINGS))
def test_jrd_never_crashes(doc: Any) -> None:
    parsed = only((ParseError,), jrd.parse_jrd, doc)
    if parsed is not None:
        parsed.link("self", jrd.ACTIVITY_TYPES)
        parsed.actor_href()


@FUZZ
@given(st.one_of(st.binary(max_size=200),
                 st.lists(st.sampled_from(XRD_PIECES), max_size=12).map(
                     lambda p: "".join(p).encode("utf-8", "surrogatepass"))),
       st.sampled_from(["", "application/xrd+xml", "application/json"]))
def test_host_meta_never_crashes(body: bytes, content_type: str) -> None:
    only((ParseError,), jrd.parse_host_meta, body, content_type)
    only((ParseError,), jrd.parse_jrd_bytes, body)


MATRIX_KEYS = ["m.server", "m.homeserver", "base_url", "server_name", "valid_until_ts",
               "verify_keys", "old_verify_keys", "signatures", "key", "ed25519:a", "ed25519:"]
MATRIX_STRINGS = ["example.test", "example.test:8448", "[::1]:8448", "[::1", "1.2.3.4:99999",
                  "https://matrix.example.test", "ed25519:auto", "AAAA", "!!!", ":", "[]"]


@FUZZ
@given(st.one_of(st.text(max_size=40), st.sampled_from(MATRIX_STRINGS)),
       json_values(MATRIX_KEYS, MATRIX_STRINGS))
def test_matrix_never_crashes(name: str, doc: Any) -> None:
    only((ParseError,), matrix.parse_server_name, name)
    only((ParseError,), matrix.parse_well_known_server, doc)
    only((ParseError,), matrix.parse_well_known_client, doc)
    report = matrix.check_server_keys(doc)  # documented: never raises, problems in the report
    assert isinstance(report.problems, list)


GARAGE_KEYS = ["status", "partitions", "partitionsAllOk", "partitionsQuorum", "storageNodes",
               "storageNodesOk", "connectedNodes", "knownNodes", "nodes", "hostname", "id",
               "isUp", "lastSeenSecsAgo", "dataPartition", "available", "total"]
GARAGE_STRINGS = ["healthy", "degraded", "unavailable"]


def fetched(body: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The dict `checks.common.fetch` records, with an arbitrary JSON answer in it."""
    return st.fixed_dictionaries({
        "status": st.one_of(st.sampled_from([200, 401, 403, 404, 503]), st.none(), st.integers()),
        "json": body,
    }, optional={"problem": st.text(max_size=10), "url": st.text(max_size=10),
                 "text": st.text(max_size=10)})


@FUZZ
@given(fetched(json_values(GARAGE_KEYS, GARAGE_STRINGS)),
       fetched(json_values(GARAGE_KEYS, GARAGE_STRINGS)),
       st.lists(st.fixed_dictionaries({"step": st.sampled_from(["put", "get", "delete"])},
                                      optional={"ok": json_values(["ok"]),
                                                "error": st.text(max_size=10),
                                                "status": json_values(["status"]),
                                                "ms": json_values(["ms"])}), max_size=4))
def test_garage_judgements_never_raise(health: dict[str, Any], cluster: dict[str, Any],
                                       steps: list[dict[str, Any]]) -> None:
    """The admin API's answers are outside data; the S3 step records are ours (their shape is
    fixed by net/s3.py) but carry the server's status and error text."""
    for verdict in (storage.Health().judge({"health": health, "cluster": cluster}),
                    storage.Nodes().judge({"status": cluster}),
                    storage.RoundTrip().judge({"steps": steps, "bucket": "b", "bytes": 1})):
        assert verdict.status is not None


FEED_KEYS = ["pname", "version", "affected_by", "cvssv3_basescore", "description", "whitelisted",
             "vulns", "id", "aliases", "summary", "details", "severity", "type", "score",
             "database_specific", "affected", "package", "name", "ecosystem", "ranges", "events",
             "introduced", "fixed", "last_affected", "versions", "ecosystem_specific"]
FEED_STRINGS = ["CVE-2024-0001", "openssl", "3.0.1", "0", "ECOSYSTEM", "SEMVER", "GIT",
                "CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "HIGH", "critical"]
WHITELIST_KEYS = ["CVE-2024-0001", "openssl", "until", "reason", "package", "version"]


@FUZZ
@given(json_values(FEED_KEYS, FEED_STRINGS), st.text(max_size=60),
       json_values(WHITELIST_KEYS, ["2030-01-01", "not a date", "because"]))
def test_advisory_feeds_never_crash(data: Any, vector: str, whitelist: Any) -> None:
    found = only((advisories.AdvisoryError,), advisories.parse_feed, data, "fuzz")
    advisories.cvss3_base_score(vector)
    advisories.cvss3_base_score("CVSS:3.1/" + vector)
    entries = only((advisories.AdvisoryError,), advisories.parse_whitelist, whitelist, "fuzz")
    if found:
        pkgs = [Package(name=a.package, version=v) for a in found
                for v in (a.versions or ("1.0",))]
        advisories.match(found, pkgs, entries or [])


# -- the fleet file ------------------------------------------------------------------------------

SECTIONS = ["probe", "store", "metrics", "zones", "mail_domains", "services", "hosts", "mail_hosts", "endpoints",
            "dns_apis", "checks", "remediation", "dashboard", "notifications", "maintenance",
            "reports"]
FIELDS = ["name", "kind", "base_url", "admin_url", "admin_token", "host", "tags", "url",
          "nameservers", "resolver", "concurrency", "timeout", "interval", "cron", "policy",
          "$env", "$file", "address", "ssh_key", "ssh_user", "host_key", "email", "apprise",
          "password", "metrics_auth", "metrics_listen", "database", "mail_host", "channel",
          "start", "end", "targets", "web.tls.certificate", "dns", "mastodon", "garage",
          "s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key", "api_key", "zones"]
CONFIG_STRINGS = ["example.test", "https://example.test/", "mastodon", "garage", "auto",
                  "approve", "dry-run", "off", "127.0.0.1:53", "0 3 * * *", "* * *", "HOME",
                  "/nonexistent", "web.*", "1h", "2030-01-01T00:00:00Z"]


def toml_values() -> st.SearchStrategy[Any]:
    key = st.one_of(st.sampled_from(FIELDS), st.text(max_size=6))
    scalars = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=12), st.sampled_from(CONFIG_STRINGS))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=6)), max_leaves=25)


FLEET_DICTS = st.dictionaries(st.one_of(st.sampled_from(SECTIONS), st.text(max_size=5)),
                              toml_values(), max_size=6)


@FUZZ
@given(FLEET_DICTS)
def test_parse_fleet_only_raises_config_error(data: dict[str, Any]) -> None:
    fleet = only((ConfigError,), parse_fleet, data, "fuzz.toml")
    if fleet is not None:
        fleet.targets()
        list(fleet.secrets())


TOML_PIECES = ["[probe]\n", "[settings]\n", "[[zones]]\n", "[[services]]\n", 'name = "a.test"\n',
               'kind = "mastodon"\n', 'base_url = "https://a.test/"\n', "[checks.web]\n",
               "interval = 5\n", 'admin_token = { "$env" = "X" }\n', "a = [1, 2\n", '"\n',
               "= \n", "x = 1979-05-27T07:32:00Z\n", "[a.b.c]\n", "\\u0000", "'''\n", "\x7f"]


@FUZZ
@given(st.one_of(st.text(max_size=300),
                 st.lists(st.sampled_from(TOML_PIECES), max_size=16).map("".join)))
def test_fleet_text_only_raises_documented_errors(text: str) -> None:
    data = only((tomllib.TOMLDecodeError,), tomllib.loads, text)
    if data is not None:
        only((ConfigError,), parse_fleet, data, "fuzz.toml")


# -- regressions: inputs the atheris long runs (bench/fuzz_atheris.py) found --------------------

def test_deeply_nested_json_is_a_parse_error() -> None:
    """A server answering `[[[[...` made json.loads raise RecursionError through parse_jrd_bytes."""
    with pytest.raises(ParseError, match="nested too deeply"):
        jrd.parse_jrd_bytes(b"[" * 100_000)


@pytest.mark.parametrize("partition", [{"available": [], "total": 1000},
                                       {"available": 10**400, "total": 1},
                                       {"available": "300", "total": 1000},
                                       {"available": 1, "total": True}])
def test_garage_nodes_judge_survives_odd_partition_figures(partition: dict[str, Any]) -> None:
    """`available / total` on server JSON raised TypeError (a list) or OverflowError (a huge
    integer) inside storage.nodes' judge."""
    node = {"id": "n1", "hostname": "g1", "isUp": True, "dataPartition": partition}
    verdict = storage.Nodes().judge({"status": {"status": 200, "json": {"nodes": [node]}}})
    assert verdict.status is not None


@pytest.mark.parametrize("entry", [{"key": []}, {"key": None}, [], "AAAA", {}])
def test_matrix_key_entry_without_a_key_string(entry: Any) -> None:
    """A verify_keys entry whose `key` is not a string made signedjson raise AttributeError."""
    doc = {"server_name": "example.test", "valid_until_ts": 1, "verify_keys": {"ed25519:a": entry},
           "signatures": {"example.test": {"ed25519:a": "AAAA"}}}
    report = matrix.check_server_keys(doc)
    assert "ed25519:a" in report.bad_signatures and not report.verified_keys


@pytest.mark.parametrize(("text", "why"), [
    ("a = " + "[" * 5000 + "\n", "nested too deeply"),
    ('[store]\nstate_dir = "a\\u0000b"\n', "unusable"),
    ('[[mail_domains]]\nname = "example.org x = false  :  # y"\n', "not a domain name"),
    ('[[zones]]\nname = "exa/mple.org"\n', "not a domain name"),
    ('[[services]]\nname = "m"\nkind = "synapse"\nbase_url = "https://m.example.org/"\n'
     'server_name = "exa[ple.org"\n', "not a Matrix server name"),
    ('[[services]]\nname = "s"\nkind = "mastodon"\nbase_url = "https://s.example.org/"\n'
     'probe_account = "a@ex[ample.org"\n', "not a domain name"),
])
def test_fleet_file_faults_are_config_errors(tmp_path: Any, text: str, why: str) -> None:
    """Found through load_fleet: tomllib's RecursionError, a NUL byte in a relative path
    (ValueError from Path.resolve), and a mail domain name that is no host name, which passed
    validation and then made `Fleet.targets()` raise pydantic's ValidationError (MTA-STS URL)."""
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=why):
        load_fleet(path).targets()


def test_secret_file_with_nul_byte_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Secret(file="/run/secrets/a\x00b").reveal()


# -- the atheris harness, short mode (the long runs: docs/reliability.md, Fuzzing) ---------------

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "fuzz_atheris.py"
SHORT_RUNS = int(os.environ.get("WATCHTOWER_ATHERIS_RUNS", "20000"))


def test_atheris_harness_short_run(tmp_path: Path) -> None:
    """atheris is in the dev extra. Every target of bench/fuzz_atheris.py (`--target all`: the first byte picks one),
    coverage-guided from the fixture seeds, a few thousand executions, a fixed seed. A crash
    leaves its input in tmp_path; the test prints libFuzzer's last lines."""
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--target", "all", f"-atheris_runs={SHORT_RUNS}",
         "-seed=1", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, tail
    assert f"Done {SHORT_RUNS} " in proc.stderr, tail
    assert not list(tmp_path.glob("crash-*")), tail


@pytest.mark.parametrize("cve", [5, 1.5, True, {"CVE-1": 1}])
def test_whitelist_cve_of_the_wrong_type_is_an_advisory_error(cve: Any) -> None:
    """`cve = 5` in a whitelist entry raised TypeError (iterating an int)."""
    entry = {"until": "2030-01-01", "reason": "because", "cve": cve}
    with pytest.raises(advisories.AdvisoryError, match="cve must be"):
        advisories.parse_whitelist({"openssl": entry}, "fuzz")
