"""Shared by the benchmarks: run the lab in its own process and print summary lines.

Why a separate process: the lab's DNS and web servers are Python threads; inside the sweeping
process they would share its GIL and the benchmark would measure both at once. Run apart, the
sweep gets its own interpreter (this machine has 2 cores: one each).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def summary(name: str, value: float, unit: str, target: float | None = None, *,
            higher_is_better: bool = False, note: str = "") -> bool:
    """One summary line: `BENCH name value unit (target ...; ratio ...) PASS|MISS`."""
    line = f"BENCH {name}: {value:,.2f} {unit}"
    ok = True
    if target is not None:
        ratio = value / target if target else float("inf")
        ok = value >= target if higher_is_better else value <= target
        op = ">=" if higher_is_better else "<="
        line += f" (target {op} {target:g} {unit}; ratio {ratio:.2f} of target) " \
                + ("PASS" if ok else "MISS")
    if note:
        line += f" [{note}]"
    print(line, flush=True)
    return ok


@contextmanager
def lab_process(directory: Path, domains: int, *, fault_share: float = 0.0, seed: int = 42,
                timeout: float = 300.0) -> Iterator[Path]:
    """`watchtower lab` with `domains` in a child process; yields its fleet file path."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("fleet.toml", "control.json"):
        (directory / stale).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "watchtower.cli", "lab", "--dir", str(directory),
            "--domains", str(domains), "--dns-port", "0", "--https-port", "0",
            "--metrics-listen", "127.0.0.1:0"]
    if fault_share:
        argv += ["--fault-share", str(fault_share), "--seed", str(seed)]
    else:
        argv += ["--faults-file", str(_no_faults(directory))]
    log = (directory / "lab.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    (directory / "lab.pid").write_text(str(proc.pid))
    try:
        end = time.monotonic() + timeout
        while not (directory / "control.json").exists():
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"lab did not start; see {directory / 'lab.log'}")
            time.sleep(0.2)
        yield directory / "fleet.toml"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _no_faults(directory: Path) -> Path:
    path = directory / "no-faults.json"
    path.write_text(json.dumps({}))
    return path


def lab_cpu_seconds(directory: Path) -> float:
    """CPU seconds (user + system) the lab process in `directory` has used so far, from
    /proc: the benchmarks print it beside their own so a reader sees which side was busy."""
    try:
        pid = int((directory / "lab.pid").read_text())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class PssPeak:
    """The peak, over the block, of the summed proportional set size (Pss in
    /proc/PID/smaps_rollup) of this process and its descendants, the lab's subtree left out.

    Why beside the summed peak RSS: workers forked from the forkserver share its pages (the
    imported code), and RSS counts a shared page in every process that maps it; Pss splits it
    between them, so the sum is the memory the sweep really holds. Sampled every `interval`
    seconds from a thread of the benchmark.
    """

    def __init__(self, lab_dir: Path, interval: float = 0.5) -> None:
        import threading

        self.lab_dir = lab_dir
        self.interval = interval
        self.peak_mb = 0.0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        try:
            lab = int((self.lab_dir / "lab.pid").read_text())
        except (OSError, ValueError):
            lab = -1
        children, todo, seen = _children(), [os.getpid()], []
        while todo:
            pid = todo.pop()
            if pid == lab:
                continue
            seen.append(pid)
            todo += children.get(pid, [])
        total = sum(_pss_kb(pid) for pid in seen) / 1024
        if total > self.peak_mb:
            self.peak_mb, self.processes = total, len(seen)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_count() -> int:
    return os.cpu_count() or 1
