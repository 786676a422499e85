"""nix/module.nix and nix/target-module.nix evaluated by nixpkgs' real module system.

The vendored nixpkgs lib runs lib.evalModules over our modules and option declarations that
follow nixpkgs (nixos-options.nix): the assertions are on the configuration NixOS would build
(units, credentials, firewall, Prometheus, sudo), on every path it references, and on each
module assertion firing with its message. The rendered fleet file goes through
`watchtower validate`, as ExecStartPre does on the host.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.integration.nix.nixeval import ROOT, NixEval

EXAMPLE = f"import {ROOT}/nix/example-settings.nix"

FULL = f"""{{
  services.watchtower = {{
    enable = true;
    dashboard.enable = true;
    prometheus.enable = true;
    openFirewall = true;
    metrics.listenAddress = "0.0.0.0:9810";
    settings = ({EXAMPLE}) // {{ dashboard.users_file = "/var/lib/watchtower/users.toml"; }};
    secretFiles.pdns-api-key = "/run/keys/pdns-api-key";
  }};
  services.prometheus.enable = true;
  services.watchtower-target = {{
    enable = true;
    authorizedKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj4 watchtower@monitor" ];
    restartableUnits = [ "mastodon-web.service" ];
  }};
}}"""

HARDENING = {
    "User": "watchtower", "Group": "watchtower", "StateDirectory": "watchtower",
    "ProtectSystem": "strict", "ProtectHome": True, "PrivateTmp": True, "PrivateDevices": True,
    "NoNewPrivileges": True, "CapabilityBoundingSet": "", "AmbientCapabilities": "",
    "RestrictAddressFamilies": ["AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"],
    "SystemCallFilter": ["@system-service", "~@privileged", "~@resources"],
    "Restart": "on-failure", "UMask": "0077",
}


@pytest.fixture(scope="module")
def full(nixeval: NixEval) -> Any:
    return nixeval.modules(FULL)


def test_the_full_configuration_evaluates_without_failed_assertions(full: Any) -> None:
    assert full["failedAssertions"] == []
    # The account watchtower logs in as has keys; Prometheus is on: nothing to warn about.
    assert full["warnings"] == []


def test_every_path_the_configuration_references_exists(full: Any) -> None:
    assert full["referencedPaths"], "expected the Prometheus rule file at least"
    assert full["missingPaths"] == []


def test_the_units_run_watchtower_with_the_rendered_fleet_file(full: Any) -> None:
    unit = full["services"]["watchtower"]["serviceConfig"]
    config_file = full["etc"]["watchtower/fleet.toml"]["source"]["out"]
    package = next(p for p in full["systemPackages"] if p["name"] == "watchtower")
    exe = f"{package['out']}/bin/watchtower"
    assert shlex.split(unit["ExecStartPre"]) == [exe, "validate", "-c", config_file]
    assert shlex.split(unit["ExecStart"]) == [exe, "run", "-c", config_file]
    assert shlex.split(unit["ExecReload"])[1:] == ["-HUP", "$MAINPID"]
    assert unit["LoadCredential"] == ["pdns-api-key:/run/keys/pdns-api-key"]
    for key, value in HARDENING.items():
        assert unit[key] == value, key
    dashboard = full["services"]["watchtower-dashboard"]["serviceConfig"]
    assert shlex.split(dashboard["ExecStart"]) == [
        exe, "dashboard", "-c", config_file, "--address", "127.0.0.1", "--port", "8501"]
    assert dashboard["LoadCredential"] == unit["LoadCredential"]
    assert [t["out"] for t in full["services"]["watchtower"]["restartTriggers"]] == [config_file]


def test_firewall_opens_the_metrics_and_dashboard_ports(full: Any) -> None:
    assert full["firewall"] == {"tcp": [8501, 9810], "udp": []}


def test_prometheus_scrapes_watchtower_and_loads_the_shipped_rules(full: Any) -> None:
    [job] = full["prometheus"]["scrapeConfigs"]
    assert job["job_name"] == "watchtower"
    assert job["static_configs"] == [{"targets": ["0.0.0.0:9810"], "labels": {}}]
    assert full["prometheus"]["ruleFiles"] == [
        str(ROOT / "dashboards" / "prometheus" / "watchtower-alerts.yml")]


def test_the_target_sudo_rule_allows_the_helper_as_root_and_nothing_else(full: Any) -> None:
    [rule] = full["sudoRules"]
    helper = next(p for p in full["systemPackages"] if p["name"] == "watchtower-remediate")
    assert rule == {"users": ["watchtower"], "groups": [], "host": "ALL", "runAs": "root",
                    "commands": [{"command": f"{helper['out']}/bin/watchtower-remediate",
                                  "options": ["NOPASSWD"]}]}
    user = full["users"]["watchtower"]
    assert user["isSystemUser"] and user["group"] == "watchtower"
    assert user["openssh"]["authorizedKeys"]["keys"] == [
        "restrict,pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj4 watchtower@monitor"]
    # The helper only restarts the listed units (its script compares word by word).
    assert 'for allowed in mastodon-web.service; do' in helper["text"]


def _credentials_as_systemd_gives_them(unit: dict[str, Any], run: Path) -> Path:
    """What LoadCredential= does at start: each NAME:PATH appears as <dir>/NAME."""
    creds = run / "credentials"
    creds.mkdir()
    for entry in unit["LoadCredential"]:
        name, _, _source = entry.partition(":")
        (creds / name).write_text("test-key\n")
    return creds


def test_rendered_settings_pass_watchtower_validate(full: Any, tmp_path: Path) -> None:
    """pkgs.formats.toml renders `builtins.toJSON settings` with a JSON->TOML converter
    (remarshal's json2toml; newer nixpkgs yj or go-toml): the TOML it writes parses back to
    that JSON value. tomli-w from the same JSON gives a file with the same parsed value, so
    `watchtower validate` sees what it sees on the host."""
    settings = full["etc"]["watchtower/fleet.toml"]["source"]["settings"]
    creds = _credentials_as_systemd_gives_them(full["services"]["watchtower"]["serviceConfig"],
                                               tmp_path)
    text = tomli_w.dumps(settings).replace("/run/credentials/watchtower.service", str(creds))
    path = tmp_path / "watchtower.toml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "watchtower.cli", "validate", "-c", str(path)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout


# Each bad combination and the words its message must contain.
BAD = {
    "dashboard-without-sign-in": (
        "services.watchtower = { enable = true; dashboard.enable = true; };",
        "needs a way to sign in"),
    "listen-without-port": (
        'services.watchtower = { enable = true; metrics.listenAddress = "localhost"; };',
        "is not host:port"),
    "listen-port-out-of-range": (
        'services.watchtower = { enable = true; metrics.listenAddress = "127.0.0.1:99999"; };',
        "is not host:port"),
    "dashboard-address-with-port": (
        'services.watchtower = { enable = true; dashboard.listenAddress = "127.0.0.1:8501"; };',
        "the port goes in services.watchtower.dashboard.port"),
    "credential-name-with-colon": (
        'services.watchtower = { enable = true; secretFiles."pdns:key" = "/run/keys/k"; };',
        "LoadCredential= rejects this name"),
    "credential-name-dot-dot": (
        'services.watchtower = { enable = true; secretFiles."..".= "/run/keys/k"; };'.replace(
            '"..".=', '".." ='),
        "LoadCredential= rejects this name"),
    "secret-as-nix-path": (
        f"services.watchtower = {{ enable = true; secretFiles.key = {ROOT}/README.md; }};",
        "world-readable Nix store"),
    "credential-nobody-hands-over": (
        'services.watchtower = { enable = true; settings.dns_apis = [ { name = "pdns"; '
        'url = "http://127.0.0.1:8081"; '
        'api_key."$file" = "/run/credentials/watchtower.service/pdns-api-key"; } ]; };',
        'has no entry "pdns-api-key"'),
    "second-metrics-address": (
        'services.watchtower = { enable = true; settings.metrics.listen = "127.0.0.1:1"; };',
        "set services.watchtower.metrics.listenAddress only"),
    "scale-out-role-on-sqlite": (
        'services.watchtower = { enable = true; role = "scheduler"; };',
        "needs a PostgreSQL services.watchtower.settings.store.database"),
    "agent-without-vantage": (
        'services.watchtower = { enable = true; role = "agent"; '
        'settings.store.database = "postgresql+psycopg://watchtower@db/watchtower"; };',
        "needs services.watchtower.agent.vantage set to one of settings.scaleout.vantages"),
    "agent-of-an-unknown-vantage": (
        'services.watchtower = { enable = true; role = "agent"; agent.vantage = "lon"; '
        'settings.store.database = "postgresql+psycopg://watchtower@db/watchtower"; '
        'settings.scaleout.vantages = [ "fra" "ams" ]; };',
        "one of settings.scaleout.vantages (fra, ams)"),
    "target-as-root": (
        'services.watchtower-target = { enable = true; user = "root"; };',
        "must be an unprivileged user name"),
    "target-unit-with-space": (
        'services.watchtower-target = { enable = true; restartableUnits = [ "a.service b.service" ]; };',
        "is not a systemd unit name"),
}


SCALE_OUT = {
    "scheduler": ('role = "scheduler";', ["run", "--role", "scheduler", "-c", "{config}"]),
    "agent": ('role = "agent"; agent.vantage = "fra";', ["agent", "-c", "{config}",
                                                        "--vantage", "fra"]),
}


@pytest.mark.parametrize("role", sorted(SCALE_OUT))
def test_scale_out_roles_run_their_command(nixeval: NixEval, role: str) -> None:
    options, argv = SCALE_OUT[role]
    out = nixeval.modules(
        "{ services.watchtower = { enable = true; " + options +
        ' settings.store.database = "postgresql+psycopg://watchtower@db/watchtower";'
        ' settings.scaleout.vantages = [ "fra" "ams" ]; }; }')
    assert out["failedAssertions"] == []
    unit = out["services"]["watchtower"]["serviceConfig"]
    config_file = out["etc"]["watchtower/fleet.toml"]["source"]["out"]
    assert shlex.split(unit["ExecStart"])[1:] == [a.format(config=config_file) for a in argv]


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_combination_fails_with_a_clear_message(nixeval: NixEval, case: str) -> None:
    configuration, words = BAD[case]
    failed = nixeval.modules("{ " + configuration + " }")["failedAssertions"]
    assert len(failed) == 1, failed
    assert words in failed[0]


def test_warnings_for_what_builds_but_cannot_work(nixeval: NixEval) -> None:
    out = nixeval.modules("""{
      services.watchtower = { enable = true; prometheus.enable = true; openFirewall = true;
        settings.probe.caa_issuers."DigiCert, Inc." = "digicert.com"; };
      services.watchtower-target.enable = true;
    }""")
    assert out["failedAssertions"] == []
    text = "\n".join(out["warnings"])
    assert "services.prometheus, which is not enabled" in text
    assert "listens on 127.0.0.1 only" in text
    assert "DigiCert, Inc." in text and "yj" in text
    assert "watchtower cannot log in to this host" in text


def test_prometheus_loads_the_rule_files_the_module_adds(full: Any, prometheus_factory: Any
                                                         ) -> None:
    """What nix/vm-test.nix checks on NixOS, here with Debian's Prometheus: the rule files of
    the evaluated services.prometheus.ruleFiles load (the prometheus module runs promtool check
    rules on each at build time; a real server is stricter)."""
    [job] = full["prometheus"]["scrapeConfigs"]
    targets = [t.replace("0.0.0.0", "127.0.0.1") for t in job["static_configs"][0]["targets"]]
    prom = prometheus_factory(targets, [Path(p) for p in full["prometheus"]["ruleFiles"]])
    rules = {r["name"] for group in prom.rules() for r in group["rules"]}
    assert {"WatchtowerCheckFailing", "WatchtowerFederationBroken"} <= rules


def test_the_vm_test_machine_evaluates_with_prometheus_and_its_rules(nixeval: NixEval,
                                                                    tmp_path: Path) -> None:
    """nix/vm-test.nix boots only on NixOS (KVM, nixpkgs); here its machine's configuration is
    evaluated as far as it goes without nixpkgs: assertions, paths, units, Prometheus."""
    vm = nixeval.modules(vm_test=True)
    assert vm["failedAssertions"] == [] and vm["warnings"] == []
    assert vm["missingPaths"] == []
    assert vm["prometheus"]["enable"] is True
    assert [Path(p).name for p in vm["prometheus"]["ruleFiles"]] == ["watchtower-alerts.yml"]
    assert {"watchtower", "watchtower-dashboard"} <= set(vm["services"])
    assert "WatchtowerCheckFailing" in vm["testScript"]
    settings = vm["etc"]["watchtower/fleet.toml"]["source"]["settings"]
    creds = _credentials_as_systemd_gives_them(vm["services"]["watchtower"]["serviceConfig"],
                                               tmp_path)
    path = tmp_path / "vm.toml"
    path.write_text(tomli_w.dumps(settings).replace("/run/credentials/watchtower.service",
                                                    str(creds)))
    proc = subprocess.run([sys.executable, "-m", "watchtower.cli", "validate", "-c", str(path)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
