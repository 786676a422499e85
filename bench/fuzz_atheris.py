"""Coverage-guided fuzzing of the parsers of outside data with atheris (libFuzzer for Python).

Hypothesis (tests/reliability/test_fuzz.py, tests/unit/parsers/test_parsers_fuzz.py) explores
inputs built from the grammars' tokens at 26-1 500 examples/s; atheris runs the same entry points
at thousands of executions per second and mutates towards new branches, which makes runs of
>= 100 000 cases per family affordable and finds what nobody thought to generate. The contract is
the same: only the documented error types (with a message) may escape, judges raise nothing.
The targets, their structure-aware input and their seeds live in bench/fuzzing/.

    python bench/fuzz_atheris.py --list
    python bench/fuzz_atheris.py --target nodeinfo -atheris_runs=100000 -print_final_stats=1
    python bench/fuzz_atheris.py --target all -max_total_time=120 corpus_dir/   # keep a corpus
    nice -n 15 python bench/fuzz_atheris.py --table 100000   # every target, a table of figures

Every argument after the harness's own is libFuzzer's (-runs, -max_total_time, -seed, -max_len,
-artifact_prefix, ...). Without a corpus directory, a temporary one is made and filled with the
target's seeds (documents from tests/fixtures); given one, the seeds are added to it. A crash
stops the run with the input saved as crash-<sha1> (under -artifact_prefix); replay it with
`python bench/fuzz_atheris.py --target NAME crash-<sha1>`. atheris is in the dev extra.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import atheris
from fuzzing import targets


def seed_corpus(name: str, given: list[str]) -> list[str]:
    """The corpus directories for libFuzzer, the first one holding the target's seeds."""
    seeds = targets.TARGETS[name].corpus()
    if not seeds:
        return given
    if given and not Path(given[0]).is_dir():  # replaying crash files, not fuzzing a corpus
        return given
    if given:
        directory = Path(given[0])
    else:  # libFuzzer adds its new inputs here too; removed when the process exits
        directory = Path(tempfile.mkdtemp(prefix=f"wt-fuzz-{name}-"))
        atexit.register(shutil.rmtree, directory, True)
    for seed in seeds:
        (directory / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)
    return [str(directory), *given[1:]]


_STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?rss: (\d+)Mb")


def table(names: list[str], runs: int, flags: list[str]) -> int:
    """Run each target in its own process, one after another, and print a Markdown table row
    per target: cases, seconds (wall, start-up included), exec/s, coverage, corpus, peak RSS."""
    print("| target | cases | s | exec/s | cov (edges) | ft | NEW | peak RSS MiB | result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    failed = 0
    for name in names:
        argv = [sys.executable, __file__, "--target", name, f"-atheris_runs={runs}", *flags]
        start = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            took = time.perf_counter() - start
            out.seek(0)
            lines = out.read().decode("utf-8", "replace").splitlines()
        code = os.waitstatus_to_exitcode(status)
        stats = [m for m in map(_STATUS.match, lines) if m]
        new = sum(1 for m in stats if m.group(2) == "NEW")
        done = next((ln for ln in reversed(lines) if ln.startswith("Done ")), "")
        cases = int(done.split()[1]) if done else (int(stats[-1].group(1)) if stats else 0)
        last = stats[-1] if stats else None
        result = "passed" if code == 0 and done else f"FAILED (exit {code})"
        failed += result != "passed"
        print(f"| {name} | {cases:,} | {took:.0f} | {cases / took:,.0f} | "
              f"{last.group(3) if last else '?'} | {last.group(4) if last else '?'} | {new} | "
              f"{usage.ru_maxrss / 1024:.0f} | {result} |", flush=True)
        if code != 0:
            print("\n".join(lines[-30:]), file=sys.stderr)
    return failed


RSS_BUDGET_MB = 2048  # libFuzzer's default -rss_limit_mb, counted from where this process starts


def with_rss_limit(flags: list[str]) -> list[str]:
    """libFuzzer judges memory by the peak RSS (getrusage ru_maxrss), and Linux carries that peak
    across fork and exec: started from a pytest process that has grown to 2.8 GB, the harness
    reported "out-of-memory (used: 2836Mb; limit: 2048Mb)" before it had allocated anything. The
    budget is therefore counted from the inherited peak, unless the caller sets -rss_limit_mb."""
    if any(flag.startswith("-rss_limit_mb=") for flag in flags):
        return flags
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return [*flags, f"-rss_limit_mb={inherited_mb + RSS_BUDGET_MB}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--target", default="all", choices=sorted(targets.TARGETS))
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--table", type=int, metavar="RUNS",
                        help="run every target (or the comma-separated --targets) RUNS times, "
                             "one process each, one after another; print a table of figures")
    parser.add_argument("--targets", default="", help="with --table: which targets")
    args, rest = parser.parse_known_args()
    if args.table:
        names = args.targets.split(",") if args.targets else [
            n for n in sorted(targets.TARGETS) if n != "all"]
        sys.exit(1 if table(names, args.table, rest) else 0)
    if args.list:
        for name in sorted(targets.TARGETS):
            print(f"{name:12} {targets.TARGETS[name].what}")
        return
    flags = with_rss_limit([a for a in rest if a.startswith("-")])
    paths = seed_corpus(args.target, [a for a in rest if not a.startswith("-")])
    with atheris.instrument_imports(include=["watchtower"]):
        targets.load()
    atheris.Setup([sys.argv[0], *flags, *paths], targets.TARGETS[args.target].run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
