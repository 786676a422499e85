"""Benchmark: a bad NixOS generation appearing -> verified rollback under `auto` (target <= 60 s).

Reuses the end-to-end test's set-up as it is (tests/integration/remediation/
test_nixos_rollback.py: a real single-user Nix store with three system generations, the
scheduler sweeping host.units and drift.reboot every second, the remediator on `auto`), so the
figure measures exactly what CI verifies. The test prints the elapsed time; this reads it.

    .venv/bin/python bench/bench_rollback.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._lab import summary  # noqa: E402

TARGET_S = 60.0
TEST = ("tests/integration/remediation/test_nixos_rollback.py::"
        "test_bad_generation_is_rolled_back_under_auto_through_the_scheduler")


def main() -> int:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           TEST], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    found = re.search(r"bad generation to verified rollback: ([0-9.]+) s", proc.stdout)
    if proc.returncode != 0 or found is None:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        print(f"BENCH rollback.seconds: FAILED (rc {proc.returncode}: {' | '.join(tail)})")
        return 1
    summary("rollback.seconds", float(found.group(1)), "s", TARGET_S,
            note="real Nix store, scheduler every 1 s, policy auto")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
