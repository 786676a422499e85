#!/usr/bin/env bash
# The README's first command: set up, start the lab fleet on loopback, and run watchtower on it.
# Needs no root and nothing from Debian beyond Python. Arguments go to `watchtower demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/watchtower demo --dir lab-state "$@"
