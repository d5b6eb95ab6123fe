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
# helm for the chart's offline checks (tests/unit/test_helm_chart.py), built once from the Go module proxy.
bash deploy/helm/check.sh >/dev/null
# Every pytest run below shares one budget (PORPOISE_TEST_BUDGET seconds, default 75 min): past it,
# pytest gets SIGTERM (tests/conftest.py turns it into an interrupt: fixtures torn down, summary
# printed), and everything still alive in its process group SIGKILL 60 s later. Each test also has
# its own limit (pytest-timeout, pyproject.toml).
budget="${PORPOISE_TEST_BUDGET:-4500}"
started=$SECONDS
run_pytest() {
  local left=$(( budget - (SECONDS - started) )) status=0
  if [ "$left" -le 60 ]; then
    echo "scripts/test.sh: the test budget of ${budget} s (PORPOISE_TEST_BUDGET) is spent" >&2
    return 124
  fi
  timeout --kill-after=60 "$left" .venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "scripts/test.sh: the test suite exceeded its budget of ${budget} s (PORPOISE_TEST_BUDGET) and was stopped" >&2
  fi
  return "$status"
}
run_pytest "$@"
# The DS semantics, operations, schedules, complements and a burst again on a real Temporal server
# (deploy/temporal/server.sh: v1.32.1 built from the Go module proxy, 4 history shards, PostgreSQL).
if [ $# -eq 0 ]; then
  bash deploy/temporal/server.sh build
  TEMPORAL_ADDRESS=$(bash deploy/temporal/server.sh start)
  trap 'bash deploy/temporal/server.sh stop' EXIT
  PORPOISE_TEST_TEMPORAL=server PORPOISE_TEST_TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS \
    run_pytest tests/integration/test_control_flow.py \
    tests/integration/test_operations.py tests/integration/test_schedules.py tests/integration/test_complement.py \
    tests/integration/test_registration.py tests/integration/test_burst.py \
    --deselect tests/integration/test_schedules.py::test_misfire_policies_across_server_downtime  # own dev server
fi
# The chaos suite (docs/reliability.md): real kills and restarts, left out of the run above.
if [ $# -eq 0 ]; then run_pytest tests/chaos; fi
