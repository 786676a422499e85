"""Running Debian's nix-bin over the Nix files with the vendored nixpkgs lib.

The vendored `lib/` (../shared/vendor/nixpkgs-lib.tar.gz) is unpacked once per session; every
Nix command runs against a throwaway store (tests/servers/nixstore.py), so nothing touches /nix.
Without nix-bin or the vendored file a test skips naming what is missing, and fails under
CI=true (tests/servers/base.py).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_dir
from tests.servers.base import in_ci, require
from tests.servers.nixstore import NixStore

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
VENDORED_LIB = "vendor/nixpkgs-lib.tar.gz"


def vendored_lib_archive() -> Path:
    shared = shared_dir()
    archive = shared / VENDORED_LIB if shared is not None else None
    if archive is None or not archive.is_file():
        message = (f"../shared/{VENDORED_LIB} (nixpkgs' lib/, see ../shared/vendor/README.md) "
                   "not found: place shared/ beside the clone or set WATCHTOWER_SHARED")
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return archive


def unpack_lib(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    lib = into / "nixpkgs-lib" / "lib"
    assert (lib / "default.nix").is_file(), f"{archive}: no nixpkgs-lib/lib/default.nix inside"
    return lib


class NixEval:
    """nix-instantiate / nix eval with the vendored lib, in a throwaway store."""

    def __init__(self, store: NixStore, lib: Path) -> None:
        self.store = store
        self.lib = lib

    def instantiate(self, *args: str) -> str:
        proc = self.store.nix("nix-instantiate", *args, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout

    def eval_json(self, file: Path, **args: str) -> Any:
        """`nix-instantiate --eval --strict --json FILE --arg libDir LIB --arg K EXPR ...`."""
        argv = ["--eval", "--strict", "--json", str(file), "--arg", "libDir", str(self.lib)]
        for key, expr in args.items():
            argv += ["--arg", key, expr]
        return json.loads(self.instantiate(*argv))

    def modules(self, configuration: str = "{ }", *, vm_test: bool = False) -> Any:
        """The evaluated NixOS configuration of nix/module.nix + nix/target-module.nix (with
        vm_test, the configuration of nix/vm-test.nix's machine)."""
        return self.eval_json(HERE / "eval.nix", configuration=configuration, repo=str(ROOT),
                              vmTest="true" if vm_test else "false")


@pytest.fixture(scope="session")
def nixeval(nix_store: NixStore, tmp_path_factory: pytest.TempPathFactory) -> NixEval:
    require("nix-instantiate", why="evaluates the NixOS modules")
    lib = unpack_lib(vendored_lib_archive(), tmp_path_factory.mktemp("nixpkgs-lib"))
    return NixEval(nix_store, lib)
