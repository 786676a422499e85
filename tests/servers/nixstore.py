"""A throwaway single-user Nix store (Debian nix-bin) holding fake NixOS system generations.

watchtower reads NixOS generations (what is deployed, which versions of mastodon/synapse are in
the closure, which kernel) and drives switch-to-configuration / rollback. Testing that against
the real nix-env, nix-store and profile symlinks catches what a mock would not (generation
numbering, rollback at the oldest generation failing, closure queries). No nixpkgs is needed:
the "systems" are tiny builtins.derivation trees built offline in well under a second.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from tests.servers.base import Server, ServerError, tool

# The fake NixOS system. Mirrors the layout watchtower looks at on a real host:
#   $system/bin/switch-to-configuration   appends "<action> <system path>" to $SWITCH_LOG; when
#                                          $CURRENT_SYSTEM_LINK is set, sleeps $SWITCH_SLEEP (0)
#                                          then points that link at $system (as NixOS
#                                          activation does /run/current-system); exits with
#                                          $SWITCH_EXIT (default 0)
#   $system/nixos-version                 e.g. 24.05.2
#   $system/kernel -> <linux-X.Y.Z>/bzImage, $system/kernel-modules -> <linux>/lib/modules
#   $system/sw -> system-path, whose bin/ links into one derivation per package (NAME-VERSION),
#   so `nix-store -q --requisites $system` lists mastodon-4.3.2 etc.
#   $system/etc -> etc derivation (motd names the generation)
SYSTEM_NIX = r"""
{ gen, hostname, nixosVersion, kernelVersion, packagesJson }:
let
  mk = name: script: builtins.derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" script ];
  };
  packages = builtins.fromJSON packagesJson;
  pkgs = builtins.attrValues (builtins.mapAttrs (pname: version: mk "${pname}-${version}" ''
    mkdir -p $out/bin
    printf '#!/bin/sh\necho "${pname} ${version}"\n' > $out/bin/${pname}
    chmod +x $out/bin/${pname}
  '') packages);
  linux = mk "linux-${kernelVersion}" ''
    mkdir -p $out/lib/modules/${kernelVersion}
    echo "Linux version ${kernelVersion} (watchtower test kernel)" > $out/bzImage
  '';
  sw = mk "system-path" ''
    mkdir -p $out/bin
    for p in ${toString pkgs}; do
      for f in $p/bin/*; do ln -s "$f" $out/bin/; done
      echo "$p" >> $out/packages
    done
    touch $out/packages
  '';
  etc = mk "etc" ''
    mkdir -p $out/etc
    echo "NixOS test generation ${gen}" > $out/etc/motd
    echo "${hostname}" > $out/etc/hostname
  '';
in mk "nixos-system-${hostname}-${nixosVersion}" ''
  mkdir -p $out/bin
  ln -s ${etc}/etc $out/etc
  ln -s ${sw} $out/sw
  ln -s ${linux}/bzImage $out/kernel
  ln -s ${linux}/lib/modules $out/kernel-modules
  printf '%s' "${nixosVersion}" > $out/nixos-version
  echo "init=$out/init loglevel=4" > $out/kernel-params
  echo "x86_64-linux" > $out/system
  cat > $out/bin/switch-to-configuration <<EOS
#!/bin/sh
printf '%s %s\n' "\$1" "$out" >> "\''${SWITCH_LOG:-/dev/null}"
if [ -n "\''${CURRENT_SYSTEM_LINK:-}" ]; then
  sleep "\''${SWITCH_SLEEP:-0}"
  ln -sfn "$out" "\$CURRENT_SYSTEM_LINK"
fi
exit "\''${SWITCH_EXIT:-0}"
EOS
  chmod +x $out/bin/switch-to-configuration
  ln -s bin/switch-to-configuration $out/activate
''
"""

DEFAULT_PACKAGES: dict[str, str] = {"mastodon": "4.3.2", "matrix-synapse": "1.120.0"}

NIX_CONF = """\
build-users-group =
sandbox = false
substituters =
experimental-features = nix-command
"""


@dataclass(frozen=True)
class Generation:
    """One entry of `nix-env --list-generations`."""

    number: int
    created: str
    current: bool


class NixStore(Server):
    """A private store under workdir (NIX_STORE_DIR etc.), with a `system` profile.

    Nothing touches /nix or root's profiles: every command runs with `env`, which points all
    of Nix's directories into workdir. There is no daemon, so start()/stop() only prepare the
    directories.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir).resolve()
        self.store_dir = self.workdir / "store"
        self.state_dir = self.workdir / "var" / "nix"
        self.conf_dir = self.workdir / "etc"
        self.profile = self.state_dir / "profiles" / "system"
        self.switch_log = self.workdir / "switch.log"
        self._expr = self.workdir / "system.nix"

    @property
    def env(self) -> dict[str, str]:
        """Environment for any Nix command (or watchtower code) to use this store."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("NIX_") or k in ("NIX_PAGER",)
        }
        env.update(
            NIX_STORE_DIR=str(self.store_dir),
            NIX_STATE_DIR=str(self.state_dir),
            NIX_LOG_DIR=str(self.workdir / "var" / "log" / "nix"),
            NIX_CONF_DIR=str(self.conf_dir),
            NIX_PATH="",
            HOME=str(self.workdir / "home"),
            XDG_CACHE_HOME=str(self.workdir / "cache"),
            SWITCH_LOG=str(self.switch_log),
        )
        return env

    def start(self) -> Self:
        """Create the directory layout and nix.conf (no process to start)."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        for d in (self.conf_dir, self.profile.parent, self.workdir / "home"):
            d.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "nix.conf").write_text(NIX_CONF)
        self._expr.write_text(SYSTEM_NIX)

    def stop(self) -> None:
        """Nothing runs between commands; the store is removed with workdir."""

    # -- commands -----------------------------------------------------------------------------

    def nix(
        self, *args: str, check: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a Nix command against this store and return the CompletedProcess.

        If the first argument names a Nix program ("nix-store", "nix-env", "nix-build",
        "nix-instantiate", "nix-collect-garbage", "nix"), it is run as is; otherwise the
        arguments go to the `nix` CLI (e.g. nix("path-info", "--json", p)).
        """
        if args and re.fullmatch(r"nix(-[a-z-]+)?", args[0]):
            argv = [tool(args[0]), *args[1:]]
        else:
            argv = [tool("nix"), *args]
        proc = subprocess.run(
            argv,
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ServerError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return proc

    def build_system(
        self,
        gen: str,
        packages: dict[str, str] | None = None,
        kernel: str = "6.6.1",
        *,
        hostname: str = "test",
        nixos_version: str | None = None,
    ) -> str:
        """Build a fake NixOS system; returns its store path (not yet in the profile).

        gen makes the system distinct (it is in etc/motd and the default nixos-version
        "24.05.<gen>"); packages maps name -> version (default mastodon 4.3.2 and
        matrix-synapse 1.120.0), each becoming a NAME-VERSION derivation in the closure.
        """
        pkgs = DEFAULT_PACKAGES if packages is None else packages
        proc = self.nix(
            "nix-build",
            str(self._expr),
            "--no-out-link",
            "--quiet",
            "--argstr",
            "gen",
            str(gen),
            "--argstr",
            "hostname",
            hostname,
            "--argstr",
            "nixosVersion",
            nixos_version or f"24.05.{gen}",
            "--argstr",
            "kernelVersion",
            kernel,
            "--argstr",
            "packagesJson",
            json.dumps(pkgs, sort_keys=True),
            check=True,
        )
        return proc.stdout.strip().splitlines()[-1]

    def set_generation(self, store_path: str) -> int:
        """Make store_path the system profile's new current generation; returns its number."""
        self.nix("nix-env", "-p", str(self.profile), "--set", store_path, check=True)
        return self.current_generation()

    def current_generation(self) -> int:
        """Number of the generation the profile points at now."""
        link = os.readlink(self.profile)
        m = re.fullmatch(r"system-(\d+)-link", os.path.basename(link))
        if not m:
            raise ServerError(f"unexpected profile link {link}")
        return int(m.group(1))

    def current_system(self) -> str:
        """Store path of the current generation (what /run/current-system would be)."""
        return os.path.realpath(self.profile)

    def generation_path(self, number: int) -> Path:
        """The profile's link for generation number (system-N-link)."""
        return self.profile.parent / f"system-{number}-link"

    def list_generations(self) -> list[Generation]:
        """Generations as nix-env lists them, oldest first."""
        out = self.nix("nix-env", "-p", str(self.profile), "--list-generations", check=True).stdout
        gens = []
        for line in out.splitlines():
            m = re.match(r"\s*(\d+)\s+(\S+\s+\S+)\s*(\(current\))?", line)
            if m:
                gens.append(Generation(int(m.group(1)), m.group(2), bool(m.group(3))))
        return gens

    def rollback(self) -> int:
        """nix-env --rollback; returns the new current generation.

        Raises ServerError at the oldest generation (nix-env exits 1 there).
        """
        self.nix("nix-env", "-p", str(self.profile), "--rollback", check=True)
        return self.current_generation()

    def switch_generation(self, number: int) -> None:
        """nix-env --switch-generation N."""
        self.nix("nix-env", "-p", str(self.profile), "--switch-generation", str(number), check=True)

    def delete_generations(self, *numbers: int) -> None:
        """nix-env --delete-generations N..."""
        self.nix(
            "nix-env",
            "-p",
            str(self.profile),
            "--delete-generations",
            *map(str, numbers),
            check=True,
        )

    def requisites(self, path: str) -> list[str]:
        """Closure of path (nix-store -q --requisites)."""
        out = self.nix("nix-store", "-q", "--requisites", path, check=True).stdout
        return out.split()

    def switch_to_configuration(
        self, action: str = "switch", system: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run $system/bin/switch-to-configuration ACTION as NixOS activation would."""
        system = system or self.current_system()
        return subprocess.run(
            [f"{system}/bin/switch-to-configuration", action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def switch_log_lines(self) -> list[str]:
        """Lines the fake switch-to-configuration appended to switch_log so far."""
        try:
            return self.switch_log.read_text().splitlines()
        except FileNotFoundError:
            return []


def timed_build_and_set(store: NixStore, gen: str) -> float:
    """Seconds for build_system + set_generation (the harness reports it)."""
    t0 = time.monotonic()
    store.set_generation(store.build_system(gen))
    return time.monotonic() - t0
