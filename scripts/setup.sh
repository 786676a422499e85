#!/usr/bin/env bash
# Shared set-up for the README's two commands: a virtual environment in .venv with watchtower
# installed from this checkout. Safe to run again; it only installs what is missing.
#   scripts/setup.sh            runtime only (the demo)
#   scripts/setup.sh dev        plus test, lint and type-check tools
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "watchtower needs Python >= 3.11 (Debian 12: apt-get install python3)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ]; then
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
      python3 -m venv .venv
    else
      echo "python3 -m venv failed: install Debian's python3-venv (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
stamp=".venv/.installed-${extra:-runtime}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  target=.
  [ "$extra" = dev ] && target='.[dev]'
  echo "installing watchtower${extra:+ with $extra tools} into .venv (first run takes a few minutes)"
  if ! .venv/bin/python -m pip install -q -e "$target" > .venv/pip.log 2>&1; then
    grep -v "is ignored" .venv/pip.log | tail -40 >&2
    echo "pip install failed; the full log is .venv/pip.log" >&2
    exit 1
  fi
  .venv/bin/python -c 'import watchtower.cli' # fail here, clearly, if the install did not work
  touch "$stamp"
fi
