"""The local transport, argv quoting for SSH, and the parsers of host command output."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.inventory.nixos import parse_df, parse_failed_units, parse_generations
from watchtower.net.transport import (
    LocalTransport,
    SshDestination,
    SshTransport,
    classify_ssh_failure,
    remote_command,
)

NASTY = ["a b", "x;y", "new\nline", "-n", "$(touch /tmp/pwned)", "'quote'", "", "*"]


def test_remote_command_survives_a_real_shell() -> None:
    """What SSH hands to the remote shell gives back exactly the argv we meant."""
    cmd = remote_command(["printf", "%s\\0", *NASTY])
    out = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == NASTY


def test_remote_command_sets_env_through_env1() -> None:
    cmd = remote_command(["sh", "-c", 'printf %s "$FOO"'], {"FOO": "a b;c"})
    assert shlex.split(cmd)[:2] == ["env", "FOO=a b;c"]
    out = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, check=True).stdout
    assert out == b"a b;c"
    with pytest.raises(ProbeError, match="bad environment variable"):
        remote_command(["true"], {"A;B": "x"})


def test_a_shell_string_is_refused() -> None:
    with pytest.raises(TypeError):
        LocalTransport().run("echo hi")  # type: ignore[arg-type]


def test_local_transport_passes_argv_untouched(tmp_path: Path) -> None:
    t = LocalTransport()
    result = t.run(["printf", "%s\\0", *NASTY])
    assert result.ok and result.stdout.split("\0")[:-1] == NASTY
    weird = tmp_path / "-weird ;name\nx"
    weird.write_text("content")
    assert t.read_file(str(weird)) == "content"
    link = tmp_path / "link"
    link.symlink_to(weird)
    assert t.read_link(str(link)) == str(weird)
    assert t.read_link(str(tmp_path / "missing")) is None


def test_local_transport_env_missing_command_and_timeout() -> None:
    t = LocalTransport({"WATCHTOWER_T": "42"})
    assert t.run(["sh", "-c", "echo $WATCHTOWER_T"]).stdout == "42\n"
    assert t.run(["no-such-command-xyz"]).rc == 127
    with pytest.raises(ProbeTimeout):
        t.run(["sleep", "5"], timeout=0.2)
    with pytest.raises(ProbeError, match="cat exited 1"):
        t.read_file("/nonexistent/file")


@pytest.mark.parametrize(("text", "expected"), [
    ("root@web1", SshDestination("root", "web1", 22)),
    ("watchtower@web1.example.org:2222", SshDestination("watchtower", "web1.example.org", 2222)),
    ("web1", SshDestination(None, "web1", 22)),
    ("u@[::1]:2200", SshDestination("u", "::1", 2200)),
    ("u@2001:db8::1", SshDestination("u", "2001:db8::1", 22)),
])
def test_ssh_destination_parse(text: str, expected: SshDestination) -> None:
    assert SshDestination.parse(text) == expected


@pytest.mark.parametrize("bad", ["-oProxyCommand=x", "u@-host", "u@h:99999", "u@h:x", ""])
def test_ssh_destination_refuses_option_injection_and_bad_ports(bad: str) -> None:
    with pytest.raises(ProbeError):
        SshDestination.parse(bad)


def test_ssh_argv_is_locked_down() -> None:
    t = SshTransport(SshDestination("root", "h", 2222), key_file="/k", known_hosts="/kh",
                     connect_timeout=3)
    argv = t.ssh_argv(["cat", "--", "a b"])
    joined = " ".join(argv)
    for option in ("-F none", "-i /k", "-p 2222", "BatchMode=yes", "IdentitiesOnly=yes",
                   "UserKnownHostsFile=/kh", "StrictHostKeyChecking=yes", "ConnectTimeout=3"):
        assert option in joined
    assert argv[-3:] == ["h", "--", "cat -- 'a b'"]


@pytest.mark.parametrize(("stderr", "kind"), [
    ("Host key verification failed.", "hostkey"),
    ("root@127.0.0.1: Permission denied (publickey).", "auth"),
    ("ssh: connect to host 127.0.0.1 port 1: Connection refused", "unreachable"),
    ("ssh: connect to host 10.0.0.1 port 22: Connection timed out", "timeout"),
    ("something else", "transport"),
])
def test_ssh_failures_are_classified(stderr: str, kind: str) -> None:
    assert classify_ssh_failure("h:22", stderr).kind == kind


def test_parse_generations() -> None:
    text = ("   1   2025-01-01 10:00:00   \n"
            "   2   2025-01-02 11:30:00   (current)\n")
    assert parse_generations(text) == [
        {"number": 1, "date": "2025-01-01 10:00:00", "current": False},
        {"number": 2, "date": "2025-01-02 11:30:00", "current": True}]


def test_parse_df() -> None:
    text = ("Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
            "/dev/sda1        100000000  90000000   5000000      95% /mnt/my disk\n")
    got = parse_df(text)
    assert got is not None
    assert got["mount"] == "/mnt/my disk"
    assert got["avail_bytes"] == 5000000 * 1024
    assert got["free_percent"] == pytest.approx(100 * 5 / 95, abs=0.01)
    assert parse_df("Filesystem ...\n") is None


def test_parse_failed_units() -> None:
    text = ("mastodon-web.service loaded failed failed Mastodon (web)\n"
            "● nginx.service loaded failed failed Nginx Web Server\n"
            "\n")
    units = parse_failed_units(text)
    assert [u["unit"] for u in units] == ["mastodon-web.service", "nginx.service"]
    assert units[0]["description"] == "Mastodon (web)"
