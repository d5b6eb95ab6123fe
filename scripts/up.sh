#!/usr/bin/env bash
# Install everything and run Porpoise on the embedded defaults (Temporal dev server + worker + API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/porpoise up "$@"
