"""`watchtower validate` names every problem of a fleet file in one pass, each with its line:
shape problems (an unknown table, a bad value, a missing key) do not hide the rules that span
entries, and indices are the file's own (watchtower/config/lines.py, config/partial.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchtower.cli import main
from watchtower.config.lines import key_lines, line_of, parse_leading_path, spell

TRICKY = '''\
# a comment with [brackets] and key = value
[probe]
nameservers = [
  "127.0.0.1:53",  # ] a bracket in a comment
  "[::1]:53",
]
"quoted.key" = 1
dotted.inner = 2

[[zones]]
name = "a.test"
notes = """
[not-a-table]
not_a_key = 1
"""

[[zones]]
name = 'b.test'
records = [
  ["a", "b"],
  { k = "v" },
]

[[zones.extra]]
y = 1

[checks."dns.ns.count"]
interval = 3600
'''


def test_key_lines_follow_the_toml_structure() -> None:
    lines = key_lines(TRICKY)
    assert lines[("probe",)] == 2
    assert lines[("probe", "nameservers")] == 3
    assert lines[("probe", "quoted.key")] == 7
    assert lines[("probe", "dotted", "inner")] == 8
    assert lines[("zones",)] == lines[("zones", 0)] == 10
    assert lines[("zones", 0, "notes")] == 12
    assert ("not-a-table",) not in lines and ("zones", 0, "not_a_key") not in lines
    assert lines[("zones", 1, "name")] == 18
    assert lines[("zones", 1, "extra", 0, "y")] == 25  # belongs to the last [[zones]]
    assert lines[("checks", "dns.ns.count", "interval")] == 28
    # a key inside an inline table: the line of its nearest key of its own
    assert line_of(("zones", 1, "records", 1, "k"), lines) == 19
    assert line_of(("nowhere",), lines) is None


def test_paths_spelled_and_read_back_alike() -> None:
    paths: list[tuple[str | int, ...]] = [("zones", 1, "name"),
                                          ("checks", "dns.ns.count", "interval"), ("probe",)]
    for path in paths:
        assert parse_leading_path(spell(path) + ": a problem") == path
    assert parse_leading_path('checks."web": unknown check') == ("checks", "web")
    assert parse_leading_path("(top level): x") == ()


BAD = '''\
[probe]
dns_timeout = "soon"

[nonsense]
a = 1

[[zones]]
name = "a.test"
ttl = 5

[[zones]]
customer = "nameless"

[[zones]]
name = "a.test"

[[hosts]]
name = "h"
ssh_key = { "$file" = "/nonexistent/key" }

[checks."no.such.check"]
interval = 5
'''


def test_validate_reports_every_problem_at_once_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(BAD)
    assert main(["validate", "-c", str(path)]) == 2
    got = capsys.readouterr().err.splitlines()
    assert got == [f"error: {path}:{line}: {problem}" for line, problem in [
        (2, "probe.dns_timeout: Input should be a valid number, unable to parse string as a "
            "number"),
        (4, "nonsense: unknown key"),
        (9, "zones[0].ttl: unknown key"),
        (11, "zones[1].name: required key is missing"),
        # found on what was left once zones[1] was taken out: still the file's own index
        (15, "zones[2].name: duplicate target 'a.test' (also zones[0])"),
        (19, "hosts[0].ssh_key: secret file /nonexistent/key: No such file or directory"),
        (21, 'checks."no.such.check": unknown check id or family'),
    ]]


def test_what_follows_from_a_refused_key_is_not_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A garage service whose admin_url is refused is not also "missing its admin_url": one
    problem, the real one; the rules still run on the rest."""
    path = tmp_path / "fleet.toml"
    path.write_text('[[services]]\nname = "s3"\nkind = "garage"\n'
                    'base_url = "https://s3.a.test/"\nadmin_url = "ftp://x"\n'
                    '[[zones]]\nname = "a.test"\n[[zones]]\nname = "a.test"\n')
    assert main(["validate", "-c", str(path)]) == 2
    got = capsys.readouterr().err.splitlines()
    assert len(got) == 2, got
    assert got[0].startswith(f"error: {path}:5: services[0].admin_url: ")
    assert "required for a garage service" not in got[0]
    assert got[1] == f"error: {path}:9: zones[1].name: duplicate target 'a.test' (also zones[0])"
