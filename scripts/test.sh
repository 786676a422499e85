#!/usr/bin/env bash
# The README's second command: install what the tests need, lint, type-check, run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -k dns -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-debian-packages.sh
bash scripts/setup.sh dev
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy"; mypy
echo "== pytest"
exec python -m pytest -q --durations=25 "$@"
