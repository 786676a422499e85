"""octoDNS-managed zones without servers: the fleet file's declaration (every problem names file,
key and why), reading the zone YAML through octoDNS, and editing it keeping comments and order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from watchtower.config import load_fleet
from watchtower.dnsdecl.octodns import Refused, Source, edit, rrsets, unified_diff
from watchtower.errors import ConfigError
from watchtower.probe.registry import load_fleet_file

CONFIG = """---
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: ./zones
  powerdns:
    class: octodns_powerdns.PowerDnsProvider
    host: 127.0.0.1
    api_key: env/NOT_READ_HERE
zones:
  example.test.:
    sources: [config]
    targets: [powerdns]
"""

ZONE = """---
# example.test, by hand
'':
  - type: MX  # one mail host
    values:
      - exchange: mail.example.test.
        preference: 10
  - type: TXT
    values:
      - v=spf1 mx -all
      - google-site-verification=abc
mail:
  type: A
  value: 192.0.2.10
www:
  type: CNAME
  value: example.test.
"""


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "dns"
    (repo / "zones").mkdir(parents=True)
    (repo / "config.yaml").write_text(CONFIG)
    (repo / "zones" / "example.test.yaml").write_text(ZONE)
    (repo / ".git").mkdir()  # what validation looks for; the git side is tested with git
    return repo


def _load(tmp_path: Path, octodns: str, tables: str = "") -> list[str]:
    path = tmp_path / "fleet.toml"
    path.write_text(f'[[zones]]\nname = "example.test"\noctodns = {octodns}\n{tables}')
    with pytest.raises(ConfigError) as err:
        load_fleet_file(str(path))  # with this machine's validators, as `validate` loads
    return err.value.problems


def test_a_good_declaration_loads_with_paths_relative_to_the_fleet_file(tmp_path: Path) -> None:
    _repo(tmp_path)
    path = tmp_path / "fleet.toml"
    path.write_text('[[zones]]\nname = "example.test"\noctodns = "dns"\n\n[[octodns]]\n'
                    'name = "dns"\nconfig = "dns/config.yaml"\nrepo = "dns"\n'
                    'target = "powerdns"\nmode = "sync"\n')
    fleet = load_fleet(path)
    assert fleet.octodns[0].repo == str(tmp_path / "dns")
    assert fleet.octodns[0].config == str(tmp_path / "dns" / "config.yaml")


@pytest.mark.parametrize(("octodns", "tables", "expected"), [
    ('"nope"', "", 'zones[0].octodns: no [[octodns]] entry named \'nope\''),
    ('{ config = "dns/config.yaml", repo = "dns", target = "pdns" }', "",
     "zones[0].octodns.target: 'pdns' is not a provider in "),
    ('{ config = "dns/config.yaml", repo = "dns", target = "powerdns", zone = "other.test" }',
     "", "zones[0].octodns.zone: 'other.test.' is not a zone in "),
    ('{ config = "dns/missing.yaml", repo = "dns", target = "powerdns" }', "",
     "zones[0].octodns.config: cannot read "),
    ('{ config = "dns/config.yaml", repo = ".", target = "powerdns" }', "",
     "zones[0].octodns.repo: "),
    ('{ config = "dns/config.yaml", repo = "dns", target = "powerdns", mode = "push" }', "",
     "zones[0].octodns.mode: Input should be 'commit' or 'sync'"),
    ('"dns"', '[[octodns]]\nconfig = "dns/config.yaml"\nrepo = "dns"\ntarget = "powerdns"\n',
     "octodns[0].name: required in an [[octodns]] table"),
])
def test_bad_declarations_name_file_key_and_why(tmp_path: Path, octodns: str, tables: str,
                                                expected: str) -> None:
    _repo(tmp_path)
    found = _load(tmp_path, octodns, tables)
    source = str(tmp_path / "fleet.toml")
    assert any(p.startswith(source + ":") and p.split(": ", 1)[1].startswith(expected)
               for p in found), found


def test_a_zone_file_outside_the_work_tree_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "config.yaml").write_text(CONFIG.replace("./zones", "/etc"))
    found = _load(tmp_path, '{ config = "dns/config.yaml", repo = "dns", target = "powerdns" }')
    assert any("zones[0].octodns.repo: the zone file /etc/example.test.yaml is outside" in p
               for p in found), found


def test_rrsets_reads_the_yaml_as_octodns_does() -> None:
    got = {(r["name"], r["type"]): [x["content"] for x in r["records"]]
           for r in rrsets(ZONE, "example.test.", Source(Path("/z/example.test.yaml")))}
    assert got[("example.test.", "MX")] == ["10 mail.example.test."]
    assert got[("www.example.test.", "CNAME")] == ["example.test."]
    assert sorted(got[("example.test.", "TXT")]) == ['"google-site-verification=abc"',
                                                     '"v=spf1 mx -all"']


@pytest.mark.parametrize(("broken", "why"), [
    (ZONE.replace("mail:\n", "mail: [\n"), "not valid octoDNS YAML at line"),
    (ZONE.replace("www:", "aaa:"), "keys out of order"),
])
def test_yaml_that_octodns_would_not_load_is_refused(broken: str, why: str) -> None:
    with pytest.raises(Refused, match=why):
        rrsets(broken, "example.test.", Source(Path("/z/example.test.yaml")), "zones/x.yaml")


def test_edit_keeps_comments_order_and_layout_and_loads_again() -> None:
    src = Source(Path("/z/example.test.yaml"))
    changes = [
        {"name": "_dmarc.example.test.", "type": "TXT", "ttl": 3600, "changetype": "REPLACE",
         "records": [{"content": '"v=DMARC1; p=reject"'}]},
        {"name": "mail.example.test.", "type": "A", "ttl": 3600, "changetype": "REPLACE",
         "records": [{"content": "192.0.2.10"}, {"content": "192.0.2.11"}]},
        {"name": "www.example.test.", "type": "CNAME", "changetype": "DELETE"},
    ]
    new = edit(ZONE, "example.test.", changes, src)
    diff = unified_diff(ZONE, new, "zones/example.test.yaml")
    assert "# example.test, by hand" in new and "- type: MX  # one mail host" in new
    assert "+_dmarc:\n" in diff and "-www:\n" in diff
    assert "v=DMARC1\\; p=reject" in new  # octoDNS's escaped semicolons
    assert new.index("_dmarc:") < new.index("mail:")  # natural order, as octoDNS enforces
    got = {(r["name"], r["type"]): sorted(x["content"] for x in r["records"])
           for r in rrsets(new, "example.test.", src)}
    assert got[("mail.example.test.", "A")] == ["192.0.2.10", "192.0.2.11"]
    assert ("www.example.test.", "CNAME") not in got
    assert got[("_dmarc.example.test.", "TXT")] == ['"v=DMARC1; p=reject"']
    # untouched lines are untouched
    assert all(line in new.splitlines() for line in ZONE.splitlines()[:12])
