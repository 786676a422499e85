"""The top entries of a `py-spy record --format raw` profile, by self time, per process kind.

py-spy's raw format is one collapsed stack per line (`frame;frame;...;leaf count`); with
`--subprocesses` the first frame names the process (`process 123:"cmdline"`). The self time
of a function is the samples where it is the leaf. Processes are grouped by what they are
(the lab, a sweep worker, the forkserver, the parent), so the lab's share is seen apart from
watchtower's: the benchmark's CPU per check counts watchtower's processes only.

    .venv/bin/python bench/pyspy_top.py profile.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

#: A process marker; its command line may hold ";" (the forkserver's `-c` code), so markers are
#: taken out of the line before it is split into frames.
PROCESS = re.compile(r'process \d+:"(?P<cmd>[^"]*)";?')
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def kind(cmds: list[str]) -> str:
    """What a process is, from the command lines py-spy nests from the traced parent down to
    the sampled process (the forkserver's children are the sweep workers)."""
    if not cmds:
        return "main"
    cmd = cmds[-1]
    if "watchtower.cli lab" in cmd or " lab --dir" in cmd:
        return "lab"
    if "forkserver" in cmd:
        forked = len(cmds) >= 2 and "forkserver" in cmds[-2]
        return "sweep workers" if forked else "forkserver (start-up imports)"
    if len(cmds) == 1:
        return "parent (sweep, store)"
    return "other: " + cmd[:60]


def short(frame: str) -> str:
    """`function (package/module.py)`: the path cut to what follows site-packages or lib."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "python3.11/", "/wt-22/", "/b22/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def tally(lines: list[str]) -> tuple[dict[str, Counter[str]], Counter[str]]:
    """Self samples per (process kind, function), and total samples per process kind."""
    selfs: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        cmds = [m["cmd"] for m in PROCESS.finditer(stack)]
        frames = [f for f in PROCESS.sub("", stack).split(";") if f]
        group = kind(cmds)
        leaf = frames[-1] if frames else "(process)"
        selfs.setdefault(group, Counter())[short(leaf)] += int(count)
        totals[group] += int(count)
    return selfs, totals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    selfs, totals = tally(args.profile.read_text().splitlines())
    grand = sum(totals.values()) or 1
    for group, counter in sorted(selfs.items(), key=lambda kv: -totals[kv[0]]):
        print(f"\n## {group}: {totals[group]:,} samples ({100 * totals[group] / grand:.1f} % of "
              "all non-idle samples)\n")
        print("| self % of process | samples | function (module) |")
        print("|---:|---:|---|")
        for func, n in counter.most_common(args.top):
            print(f"| {100 * n / totals[group]:.1f} | {n:,} | `{func}` |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
