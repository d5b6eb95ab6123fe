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
# The whole suite has a budget (PORPOISE_TEST_BUDGET seconds, default 90 min): past it, pytest gets
# SIGTERM (tests/conftest.py turns it into an interrupt: fixtures torn down, summary printed), and
# everything still alive in its process group SIGKILL 60 s later. Each test also has its own limit
# (pytest-timeout, pyproject.toml).
budget="${PORPOISE_TEST_BUDGET:-5400}"
status=0
timeout --kill-after=60 "$budget" .venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "scripts/test.sh: the test suite exceeded its budget of ${budget} s (PORPOISE_TEST_BUDGET) and was stopped" >&2
fi
exit "$status"
