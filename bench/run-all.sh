#!/usr/bin/env bash
# Every benchmark, one after another, printing their `BENCH ...` summary lines (the README's
# "Benchmarks" table is copied from this output). Set-up as scripts/test.sh: the venv, and the
# Debian packages when run as root. Extra arguments are ignored; tune each script by hand.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then bash scripts/install-debian-packages.sh; fi
bash scripts/setup.sh dev
PY="$PWD/.venv/bin/python"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), $(uname -sr), $(date -u +%FT%TZ)"
status=0
for script in bench_sweep bench_blackbox bench_dns_mail bench_store bench_rollback \
              bench_metrics bench_scheduler bench_dashboard bench_tlsscan bench_scaleout; do
  if [ -f "bench/$script.py" ]; then
    echo "== $script"
    "$PY" "bench/$script.py" 2>&1 | grep -E '^(BENCH|#)|target|ratio' || status=1
  fi
done
exit "$status"
