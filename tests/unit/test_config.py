"""The fleet file: good files load, bad ones give one clear line per problem (file, key, why)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from watchtower.cli import main
from watchtower.config import Secret, load_fleet, parse_fleet
from watchtower.errors import ConfigError
from watchtower.model import TargetKind
from watchtower.probe import registry

EXAMPLE = Path(__file__).resolve().parents[2] / "watchtower" / "example_fleet.toml"


def problems(data: dict, known=None) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        parse_fleet(data, "fleet.toml", known)
    return err.value.problems


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("secret")
    text = EXAMPLE.read_text().replace("/run/secrets/watchtower-ssh-key", str(key))
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    fleet = load_fleet(path, registry.check_ids_and_families())
    kinds = {t.kind for t in fleet.targets()}
    assert {TargetKind.ZONE, TargetKind.MAIL_DOMAIN, TargetKind.MASTODON,
            TargetKind.ENDPOINT, TargetKind.HOST} <= kinds


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"settingz": {}}, "fleet.toml: settingz: unknown key"),
        ({"probe": {"dns_timeout": "soon"}}, "fleet.toml: probe.dns_timeout: Input should be a valid number"),
        ({"probe": {"nameservers": ["1.2.3.4:x"]}}, "probe.nameservers: expected host:port"),
        ({"services": [{"name": "a", "kind": "mastodon", "base_url": "ftp://x"}]},
         "fleet.toml: services[0].base_url: not a https/http URL: 'ftp://x'"),
        ({"services": [{"name": "a", "kind": "friendica", "base_url": "https://x"}]},
         "services[0].kind: Input should be"),
        ({"zones": [{"name": "a.test"}, {"name": "a.test"}]},
         "fleet.toml: zones[1].name: duplicate target 'a.test' (also zones[0])"),
        ({"zones": [{"name": "bad..name"}]}, "zones[0].name: not a domain name"),
        ({"dns_apis": [{"name": "p", "url": "http://x", "api_key": "hunter2"}]},
         "dns_apis[0].api_key: secrets are never inline"),
        ({"services": [{"name": "a", "kind": "mastodon", "base_url": "https://x", "host": "h"}]},
         "services[0].host: no [[hosts]] entry named 'h'"),
        ({"zones": [{"name": "a.test", "colour": "red"}]}, "zones[0].colour: unknown key"),
        ({"services": [{"name": "a", "kind": "mastodon"}]}, "services[0].base_url: required key is missing"),
    ],
)
def test_bad_config_names_key_and_reason(data: dict, expected: str) -> None:  # type: ignore[type-arg]
    found = problems(data)
    assert any(expected in p for p in found), found


def test_unknown_check_id_is_rejected() -> None:
    known = registry.check_ids_and_families()
    found = problems({"checks": {"dns.ns.cuont": {"interval": 60}}}, known)
    assert found == ['fleet.toml: checks."dns.ns.cuont": unknown check id or family']
    # ids, families and globs that match are fine
    parse_fleet({"checks": {"dns.ns.count": {}, "web": {}, "dns.*": {}}}, "f", known)


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"zones": [{"name": "a.test", "x": 1}], "probe": {"concurrency": 0}})
    assert len(found) == 2


def test_secret_from_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WT_TEST_SECRET", "s3cr3t")
    secret = Secret.model_validate({"$env": "WT_TEST_SECRET"})
    assert secret.reveal() == "s3cr3t"
    assert "s3cr3t" not in repr(secret) and "s3cr3t" not in str(secret)
    f = tmp_path / "s"
    f.write_text("from-file\n")
    assert Secret.model_validate({"$file": str(f)}).reveal() == "from-file"
    monkeypatch.delenv("WT_TEST_SECRET")
    found = problems({"dns_apis": [{"name": "p", "url": "http://x",
                                    "api_key": {"$env": "WT_TEST_SECRET"}}]})
    assert found == ["fleet.toml: dns_apis[0].api_key: environment variable WT_TEST_SECRET is not set"]


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "fleet.toml").write_text('[probe]\nca_bundle = "ca.pem"\n'
                                         '[store]\ndatabase = "sqlite:///wt.db"\n')
    fleet = load_fleet(tmp_path / "fleet.toml")
    assert fleet.probe.ca_bundle == str(tmp_path / "ca.pem")
    assert fleet.store.database == f"sqlite:///{tmp_path / 'wt.db'}"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[probe\n")
    with pytest.raises(ConfigError) as err:
        load_fleet(bad)
    assert err.value.problems[0].startswith(f"{bad}: invalid TOML")
    with pytest.raises(ConfigError) as err:
        load_fleet(tmp_path / "nope.toml")
    assert "cannot read" in err.value.problems[0]


def test_validate_command_exit_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.toml"
    bad.write_text('[[zones]]\nname = "a.test"\nttl = 5\n')
    proc = subprocess.run([sys.executable, "-m", "watchtower.cli", "validate", "-c", str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {bad}:3: zones[0].ttl: unknown key"
    assert "Traceback" not in proc.stderr


def test_init_writes_a_valid_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fleet.toml"
    assert main(["init", "-o", str(out)]) == 0
    assert main(["init", "-o", str(out)]) == 2  # refuses to overwrite
    assert "[probe]" in out.read_text()


def test_init_output_validates_on_a_fresh_machine(tmp_path: Path) -> None:
    """No secret file, no state directory, an empty home: what `init` writes validates, and its
    commented secret examples validate too once what they name exists."""
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "XDG_STATE_HOME")}
    env["HOME"] = str(tmp_path / "home")
    out = tmp_path / "fleet.toml"

    def watchtower(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "watchtower.cli", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, check=False)

    assert watchtower("init", "-o", str(out)).returncode == 0
    checked = watchtower("validate", "-c", str(out))
    assert checked.returncode == 0, checked.stderr
    text = out.read_text()
    examples = re.findall(r'^# (\w+ = \{ "\$file" = "([^"]+)" \})$', text, re.MULTILINE)
    assert examples, "the example shows how a secret is named"
    for line, secret_path in examples:
        key = tmp_path / Path(secret_path).name
        key.write_text("not a real key\n")
        text = text.replace(f"# {line}", line.replace(secret_path, str(key)))
    out.write_text(text)
    checked = watchtower("validate", "-c", str(out))
    assert checked.returncode == 0, checked.stderr
