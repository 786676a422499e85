"""drift.* and host.* against a real Nix store (Debian nix-bin), locally and over real OpenSSH.

Generations are fake NixOS systems built from builtins.derivation (tests/servers/nixstore.py) in
a throwaway store; a profile of our own (`drift-web1`) keeps these tests independent of others
that use the shared store's `system` profile. /run/current-system and /run/booted-system are
symlinks in a temp dir. systemd cannot run here, so host.units uses a stand-in `systemctl` that
prints what `systemctl list-units --failed --plain --no-legend` prints.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from watchtower.config import Fleet
from watchtower.model import Result, TargetKind
from watchtower.net.transport import SshDestination, SshTransport, TransportError
from watchtower.probe import registry
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, execute

FEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
GEN1_PACKAGES = {"mastodon": "4.3.1", "matrix-synapse": "1.120.0", "openssl": "3.0.13"}
GEN2_PACKAGES = {**GEN1_PACKAGES, "mastodon": "4.3.2", "pixelfed": "0.12.4"}
NIX_VARS = ("NIX_STORE_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR", "NIX_CONF_DIR")
NASTY = ["a b", "x;y", "new\nline", "-n", "$(touch /tmp/drift-pwned)", "'q'", "*"]


class World:
    """The store, two generations in our profile, a third system only in the store."""

    def __init__(self, store: Any, root: Path) -> None:
        self.store = store
        self.root = root
        self.profile = store.state_dir / "profiles" / "drift-web1"
        self.gen1 = store.build_system("1", GEN1_PACKAGES, kernel="6.6.1", hostname="web1")
        self.gen2 = store.build_system("2", GEN2_PACKAGES, kernel="6.6.2", hostname="web1")
        self.gen3 = store.build_system("3", GEN2_PACKAGES, kernel="6.6.2", hostname="web1")
        for path in (self.gen1, self.gen2):
            store.nix("nix-env", "-p", str(self.profile), "--set", path, check=True)
        self.run = root / "run"
        self.run.mkdir()
        self.units = root / "systemctl"
        self.units.write_text("#!/bin/sh\ncat \"$(dirname \"$0\")/failed-units.txt\"\n")
        self.units.chmod(0o755)
        self.set_failed_units("")
        self.boot(self.gen1)

    def boot(self, booted: str, current: str | None = None) -> None:
        for name, target in (("booted-system", booted), ("current-system", current or booted)):
            link = self.run / name
            if link.is_symlink():
                link.unlink()
            link.symlink_to(target)

    def set_failed_units(self, text: str) -> None:
        (self.root / "failed-units.txt").write_text(text)

    def host(self, **extra: Any) -> dict[str, Any]:
        env = {k: v for k, v in self.store.env.items() if k in NIX_VARS}
        return {"name": "web1", "profile": str(self.profile), "env": env,
                "current_system": str(self.run / "current-system"),
                "booted_system": str(self.run / "booted-system"),
                "systemctl": str(self.units), **extra}


@pytest.fixture(scope="module")
def world(nix_store: Any, tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(nix_store, tmp_path_factory.mktemp("drift"))


@pytest.fixture(params=["local", "ssh"])
def via(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Host keys that select the transport: none (local) or our real sshd."""
    if request.param == "local":
        return {}
    sshd = request.getfixturevalue("sshd")
    return {"ssh": f"{sshd.user}@127.0.0.1:{sshd.port}",
            "ssh_key": {"$file": str(sshd.client_key)}, "known_hosts": str(sshd.known_hosts),
            "connect_timeout": 5}


def sweep(check_id: str, fleet_doc: dict[str, Any], kind: TargetKind = TargetKind.HOST,
          name: str = "web1") -> Result:
    fleet = Fleet.model_validate(fleet_doc)
    target = next(t for t in fleet.targets() if t.kind is kind and t.name == name)
    check = registry.checks()[check_id]
    s = SweepClients(fleet)
    try:
        return execute(Job(check, target, 30), s.context(time.monotonic() + 30))
    finally:
        s.close()


def test_generation_ok_then_drift_with_closure_diff(world: World, via: dict[str, Any]) -> None:
    world.boot(world.gen2)
    ok = sweep("drift.generation", {"hosts": [world.host(expected_system=world.gen2, **via)]})
    assert str(ok.status) == "ok", ok.summary
    assert "generation 2" in ok.summary

    world.boot(world.gen1)  # running the old generation, gen2 declared
    bad = sweep("drift.generation", {"hosts": [world.host(expected_system=world.gen2, **via)]})
    assert str(bad.status) == "fail", bad.summary
    assert "generation 1" in bad.summary and "declared system is generation 2" in bad.summary
    diff = bad.evidence["closure_diff"]
    assert diff["from"] == world.gen1 and diff["to"] == world.gen2
    assert diff["added"] == [{"name": "pixelfed", "version": "0.12.4"}]
    assert diff["removed"] == []
    assert diff["changed"] == [
        {"name": "linux", "old": "6.6.1", "new": "6.6.2"},
        {"name": "mastodon", "old": "4.3.1", "new": "4.3.2"},
        {"name": "nixos-system-web1", "old": "24.05.1", "new": "24.05.2"},
    ]
    # the host's own `nix store diff-closures` agrees
    assert "mastodon: 4.3.1 → 4.3.2" in diff["diff_closures"]
    assert "pixelfed: ∅ → 0.12.4" in diff["diff_closures"]
    gens = bad.evidence["generations"]
    assert [(g["number"], g["path"]) for g in gens] == [(1, world.gen1), (2, world.gen2)]
    assert gens[1]["current"] is True


def test_generation_declared_but_not_a_generation_or_not_in_store(world: World) -> None:
    world.boot(world.gen2)
    r = sweep("drift.generation", {"hosts": [world.host(expected_system=world.gen3)]})
    assert str(r.status) == "fail" and "in the store but no generation" in r.summary
    missing = world.gen3.replace(Path(world.gen3).name[:32], "0" * 32)
    r = sweep("drift.generation", {"hosts": [world.host(expected_system=missing)]})
    assert str(r.status) == "fail" and "not in the host's store" in r.summary
    assert "closure_diff" not in r.evidence


def test_generation_from_manifest(world: World, tmp_path: Path) -> None:
    world.boot(world.gen2)
    manifest = tmp_path / "deploy.json"
    manifest.write_text(json.dumps({"hosts": {"web1": {"toplevel": world.gen2}}}))
    r = sweep("drift.generation", {"hosts": [world.host(manifest=str(manifest))]})
    assert str(r.status) == "ok", r.summary
    manifest.write_text(json.dumps({"web2": world.gen2}))
    r = sweep("drift.generation", {"hosts": [world.host(manifest=str(manifest))]})
    assert str(r.status) == "error" and "no toplevel path for host web1" in r.summary


def test_reboot(world: World, via: dict[str, Any]) -> None:
    world.boot(world.gen1, current=world.gen2)
    r = sweep("drift.reboot", {"hosts": [world.host(**via)]})
    assert str(r.status) == "warn", r.summary
    assert "linux-6.6.1" in r.summary and "linux-6.6.2" in r.summary
    world.boot(world.gen2)
    r = sweep("drift.reboot", {"hosts": [world.host(**via)]})
    assert str(r.status) == "ok", r.summary


def test_not_a_nixos_host_is_an_error(world: World, tmp_path: Path) -> None:
    r = sweep("drift.reboot", {"hosts": [world.host(current_system=str(tmp_path / "none"))]})
    assert str(r.status) == "error" and "not a NixOS system" in r.summary


def test_advisories_against_the_running_closure(world: World, tmp_path: Path) -> None:
    world.boot(world.gen1)
    feeds = {"advisories": [str(FEEDS / "vulnix.json"), str(FEEDS / "osv.json")]}
    r = sweep("drift.advisories", {"feeds": feeds, "hosts": [world.host()]})
    assert str(r.status) == "fail", r.summary
    assert "CVE-2024-5535 (critical 9.1) in openssl 3.0.13" in r.summary
    ids = {m["id"] for m in r.evidence["matches"]}
    assert ids == {"CVE-2024-5535", "CVE-2024-2511", "GHSA-test-mast", "OSV-TEST-SYNAPSE"}

    whitelist = tmp_path / "wl.toml"
    whitelist.write_text('[openssl]\nuntil = 2099-01-01\nreason = "test"\n'
                         '[mastodon]\nuntil = 2099-01-01\nreason = "test"\n')
    r = sweep("drift.advisories", {"feeds": {**feeds, "whitelist": str(whitelist)},
                                   "hosts": [world.host()]})
    assert str(r.status) == "warn", r.summary  # only the medium synapse one is left
    assert "OSV-TEST-SYNAPSE" in r.summary and "openssl" not in r.summary

    world.boot(world.gen2)  # mastodon 4.3.2 is past GHSA-test-mast's fix
    r = sweep("drift.advisories", {"feeds": feeds, "hosts": [world.host()]})
    assert "GHSA-test-mast" not in {m["id"] for m in r.evidence["matches"]}


def test_disk_with_real_df(world: World, tmp_path: Path) -> None:
    r = sweep("host.disk", {"hosts": [world.host(disk_paths=["/", str(tmp_path)])]})
    assert str(r.status) in ("ok", "warn", "fail")
    assert all(0 <= d["free_percent"] <= 100 for d in r.evidence["disks"])
    r = sweep("host.disk", {"hosts": [world.host(disk_paths=[str(tmp_path / "gone")])]})
    assert str(r.status) == "error" and "cannot measure" in r.summary


def test_units_declared_by_services(world: World, via: dict[str, Any]) -> None:
    world.set_failed_units("mastodon-web.service loaded failed failed Mastodon web\n"
                           "logrotate.service loaded failed failed Rotate logs\n")
    doc = {"hosts": [world.host(**via)], "services": [
        {"name": "social", "kind": "mastodon", "base_url": "https://social.test/",
         "host": "web1"}]}
    r = sweep("host.units", doc)
    assert str(r.status) == "fail" and "mastodon-web.service failed" in r.summary
    world.set_failed_units("logrotate.service loaded failed failed Rotate logs\n")
    r = sweep("host.units", doc)
    assert str(r.status) == "warn" and "logrotate.service" in r.summary
    world.set_failed_units("")
    assert str(sweep("host.units", doc).status) == "ok"


def test_version_against_real_synapse_and_the_closure(world: World, synapse: Any) -> None:
    world.boot(world.gen2)  # its closure has matrix-synapse 1.120.0
    running = synapse.federation_version()["server"]["version"].split()[0]
    doc: dict[str, Any] = {
        "feeds": {"release": str(FEEDS / "releases.json")},
        "hosts": [world.host()],
        "services": [{"name": "matrix", "kind": "synapse", "base_url": synapse.url,
                      "version": running, "host": "web1"}]}
    r = sweep("drift.version", doc, TargetKind.SYNAPSE, "matrix")
    assert str(r.status) == "warn", r.summary  # the host's closure disagrees: restart pending
    assert "restart pending" in r.summary and r.evidence["closure_version"] == "1.120.0"
    doc["services"][0]["version"] = "1.120.0"
    r = sweep("drift.version", doc, TargetKind.SYNAPSE, "matrix")
    assert str(r.status) == "fail" and "declared 1.120.0" in r.summary
    assert r.evidence["upstream"]["newest"] == "1.121.1"


# -- the SSH transport itself ------------------------------------------------------------------


def transport(sshd: Any, *, key: Path | None = None, known_hosts: Path | None = None,
              port: int | None = None) -> SshTransport:
    return SshTransport(SshDestination(sshd.user, "127.0.0.1", port or sshd.port),
                        key_file=str(key or sshd.client_key),
                        known_hosts=str(known_hosts or sshd.known_hosts), connect_timeout=5)


def test_ssh_passes_nasty_arguments_literally(sshd: Any, tmp_path: Path) -> None:
    t = transport(sshd)
    result = t.run(["printf", "%s\\0", *NASTY])
    assert result.ok and result.stdout.split("\0")[:-1] == NASTY
    assert not Path("/tmp/drift-pwned").exists()
    weird = tmp_path / "-weird ;name\nwith newline"
    weird.write_text("over ssh")
    assert t.read_file(str(weird)) == "over ssh"
    assert t.read_link(str(tmp_path / "absent")) is None
    assert t.run(["sh", "-c", "exit 3"]).rc == 3


def test_ssh_refused_key(sshd: Any) -> None:
    with pytest.raises(TransportError) as exc:
        transport(sshd, key=sshd.other_key).run(["true"])
    assert exc.value.kind == "auth"


def test_ssh_unknown_host_key_is_refused(sshd: Any, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError) as exc:
        transport(sshd, known_hosts=empty).run(["true"])
    assert exc.value.kind == "hostkey"
    assert empty.read_text() == ""  # nothing learnt on first use


def test_ssh_unreachable_host(sshd: Any) -> None:
    from tests.servers.base import free_port

    with pytest.raises(TransportError) as exc:
        transport(sshd, port=free_port()).run(["true"])
    assert exc.value.kind == "unreachable"


def test_ssh_key_from_env_secret(world: World, sshd: Any, monkeypatch: pytest.MonkeyPatch
                                 ) -> None:
    monkeypatch.setenv("WT_DRIFT_SSH_KEY", Path(sshd.client_key).read_text())
    world.boot(world.gen2)
    host = world.host(ssh=f"{sshd.user}@127.0.0.1:{sshd.port}",
                      ssh_key={"$env": "WT_DRIFT_SSH_KEY"}, known_hosts=str(sshd.known_hosts))
    r = sweep("drift.reboot", {"hosts": [host]})
    assert str(r.status) == "ok", r.summary
    assert os.environ["WT_DRIFT_SSH_KEY"] not in json.dumps(r.evidence)


def test_store_integrity_finds_a_tampered_path(world: World, tmp_path: Path,
                                               via: dict[str, Any]) -> None:
    """A system of its own (no other test uses its paths): verified clean, then one file of a
    package in its closure is made writable and changed, as a service writing into its own
    store path would; both the hash mismatch and the write bit are found."""
    system = world.store.build_system("integrity", {"pixelfed": "0.12.4-integrity"},
                                      hostname="integrity")
    run = tmp_path / "run"
    run.mkdir()
    (run / "current-system").symlink_to(system)
    host = world.host(current_system=str(run / "current-system"), **via)
    clean = sweep("host.store-integrity", {"hosts": [host]})
    assert str(clean.status) == "ok", clean.summary
    assert clean.evidence["verified"] == clean.evidence["closure_size"] > 3
    package = next(p for p in world.store.requisites(system) if p.endswith("0.12.4-integrity"))
    victim = Path(package) / "bin" / "pixelfed"
    original = victim.read_bytes()
    victim.parent.chmod(0o755)
    victim.chmod(0o644)
    victim.write_bytes(original + b"# written at run time\n")
    try:
        bad = sweep("host.store-integrity", {"hosts": [host]})
        rotated = sweep("host.store-integrity", {"hosts": [{**host, "store_sample": 2}]})
    finally:
        victim.write_bytes(original)
        victim.chmod(0o555)
        victim.parent.chmod(0o555)
    assert str(bad.status) == "fail", bad.summary
    assert f"{package} was modified" in bad.summary
    assert str(victim) in bad.evidence["writable"]
    assert rotated.evidence["verified"] == 2  # a bounded chunk of the closure per sweep
    assert str(sweep("host.store-integrity", {"hosts": [host]}).status) == "ok"
