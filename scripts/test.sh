#!/usr/bin/env bash
# Install everything, start the services the tests use, and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash deploy/services/postgres.sh start
export PORPOISE_TEST_POSTGRES_URL="${PORPOISE_TEST_POSTGRES_URL:-postgresql+psycopg://porpoise:porpoise@127.0.0.1:5432/porpoise}"
bash deploy/services/mariadb.sh
export PORPOISE_TEST_MARIADB_URL="${PORPOISE_TEST_MARIADB_URL:-mysql+pymysql://porpoise:porpoise@127.0.0.1:3306/porpoise}"
# A real Apache Pulsar standalone broker, assembled from Maven Central jars (deploy/pulsar/).
bash deploy/pulsar/pulsar.sh build
PULSAR_URL=$(bash deploy/pulsar/pulsar.sh start)
export PORPOISE_TEST_PULSAR_URL="${PORPOISE_TEST_PULSAR_URL:-$PULSAR_URL}" PORPOISE_REQUIRE_PULSAR=1
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
# The chaos suite (docs/reliability.md): real kills and restarts, left out of the run above.
if [ $# -eq 0 ]; then .venv/bin/python -m pytest -q -p no:cacheprovider tests/chaos; fi
