#!/usr/bin/env bash
# A real Apache Pulsar standalone (broker + one bookie + RocksDB metadata, one JVM) built from Maven
# Central jars: no Docker, no tarball. Listens on 127.0.0.1 only.
#
#   pulsar.sh build    resolve pulsar-broker and its runtime deps into deploy/pulsar/target/lib
#                      (skipped when already complete for this pom.xml; installs maven/openjdk-17
#                      from Debian if missing), then record a class-data-sharing archive of one
#                      start/stop of the broker for this java, which halves later start-ups.
#                      Maven repo: ${PORPOISE_M2:-$HOME/.m2/repository}.
#   pulsar.sh start    daemonize the broker, wait until it is healthy, print its service URL
#   pulsar.sh stop     graceful broker shutdown over HTTP (topics and cursors closed while the bookie
#                      is still up), then SIGTERM, then SIGKILL after PULSAR_STOP_TIMEOUT s
#   pulsar.sh status   exit 0 and print the URL if running and healthy, 1 if unhealthy, 3 if stopped
#
# Environment:
#   PORPOISE_PULSAR_DATA  data, config copy, logs, pid      (default /var/tmp/porpoise-pulsar)
#   PULSAR_BROKER_PORT    binary protocol port               (default 6650)
#   PULSAR_WEB_PORT       HTTP admin port                    (default 8080)
#   PULSAR_BOOKIE_PORT    bookie port                        (default 3181)
#   PULSAR_HEAP           JVM heap -Xms/-Xmx                 (default 384m)
#   PULSAR_DIRECT_MEMORY  -XX:MaxDirectMemorySize            (default 256m)
#   PULSAR_EXTRA_OPTS     extra JVM options (appended last, so they win)
#   PULSAR_CDS            0 = build records no class-data-sharing archive (default 1)
#   PULSAR_START_TIMEOUT  seconds to wait for health         (default 120)
#   PULSAR_STOP_TIMEOUT   seconds before SIGKILL             (default 30)
#   JAVA_HOME / JAVA      the java to run (needs 17+)
#
# Only `start` prints to stdout (the pulsar:// URL) so that `URL=$(pulsar.sh start)` works;
# everything else goes to stderr. Broker output goes to $PORPOISE_PULSAR_DATA/logs/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB="$HERE/target/lib"
STAMP="$LIB/.complete"
M2=${PORPOISE_M2:-$HOME/.m2/repository}
DATA=${PORPOISE_PULSAR_DATA:-/var/tmp/porpoise-pulsar}
BROKER_PORT=${PULSAR_BROKER_PORT:-6650}
WEB_PORT=${PULSAR_WEB_PORT:-8080}
BOOKIE_PORT=${PULSAR_BOOKIE_PORT:-3181}
HEAP=${PULSAR_HEAP:-384m}
DIRECT=${PULSAR_DIRECT_MEMORY:-256m}
START_TIMEOUT=${PULSAR_START_TIMEOUT:-120}
STOP_TIMEOUT=${PULSAR_STOP_TIMEOUT:-30}
MAIN=org.apache.pulsar.PulsarStandaloneStarter
CDS_OPTS=()  # set by cmd_build for the training run

log() { echo "pulsar: $*" >&2; }
die() { log "$*"; exit 1; }

# Paths that depend on DATA (the training run in `build` switches DATA to a scratch dir).
set_data() { DATA=$1; PIDFILE="$DATA/pulsar.pid"; LOGDIR="$DATA/logs"; }
set_data "$DATA"

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >&2; _APT_UPDATED=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

find_java() {
  if [ -n "${JAVA:-}" ]; then echo "$JAVA"
  elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then command -v java
  fi
}

# "17.0.21.1" -> "17 0 21"
java_version() { "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.\{0,1\}\([0-9]*\)\.\{0,1\}\([0-9]*\).*/\1 \2 \3/p' | head -n1; }

ensure_java() {
  local j v
  j=$(find_java)
  if [ -z "$j" ]; then
    log "no java: installing openjdk-17-jre-headless"
    apt_install openjdk-17-jre-headless
    j=$(find_java)
  fi
  [ -n "$j" ] || die "no java found"
  read -r -a v <<<"$(java_version "$j")"
  [ "${v[0]:-0}" -ge 17 ] || die "$j is Java ${v[0]:-?}; Pulsar 4 needs 17+"
  # Pulsar's README: JVM bug JDK-8351933 is fixed in 17.0.17+. Debian ships newer 17 builds.
  if [ "${v[0]}" = 17 ] && [ "${v[2]:-0}" -lt 17 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    log "Java 17.0.${v[2]:-0} < 17.0.17: upgrading openjdk-17-jre-headless (best effort)"
    apt_install openjdk-17-jre-headless || log "upgrade failed; continuing with 17.0.${v[2]:-0}"
  fi
  command -v curl >/dev/null 2>&1 || apt_install curl
}

pom_hash() { cat "$HERE/pom.xml" "$HERE/settings.xml" | sha256sum | cut -c1-16; }

lib_complete() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(pom_hash)" ]; }

# Class-data-sharing archive for this java + this jar set (a stale one is only a warning to the JVM,
# which then loads classes the slow way).
cds_archive() {
  local j
  j=$(find_java)
  [ -n "$j" ] || return 0
  echo "$LIB/cds-$({ readlink -f "$j"; "$j" -version 2>&1; cat "$STAMP" 2>/dev/null; } | sha256sum | cut -c1-16).jsa"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    port_busy "$p" || { echo "$p"; return; }
  done
}

cmd_build() {
  if lib_complete; then
    log "target/lib is complete ($(find "$LIB" -name '*.jar' | wc -l) jars)"
  else
    ensure_java
    command -v mvn >/dev/null 2>&1 || { log "installing maven"; apt_install maven; }
    mkdir -p "$M2" "$HERE/target"
    local tmp="$HERE/target/lib.tmp.$$" t0=$SECONDS
    rm -rf "$tmp"
    log "resolving pulsar-broker into target/lib (maven repo $M2)..."
    # (Debian's maven 3.8 prints ANSI resets even in batch mode: strip them.)
    if ! (cd "$HERE" && mvn -B -q -Dstyle.color=never -s settings.xml -Dmaven.repo.local="$M2" \
            -Dpulsar.lib.dir="$tmp" dependency:copy-dependencies 2>&1) | sed 's/\x1b\[[0-9;]*m//g' >&2; then
      rm -rf "$tmp"
      die "maven could not resolve the broker's dependencies (see above)"
    fi
    ls "$tmp"/pulsar-broker-*.jar >/dev/null 2>&1 || die "pulsar-broker jar missing after resolution"
    pom_hash >"$tmp/.complete"
    rm -rf "$LIB" && mv "$tmp" "$LIB"
    log "resolved: $(find "$LIB" -name '*.jar' | wc -l) jars, $(du -sh "$LIB" | cut -f1), $((SECONDS - t0)) s"
  fi
  [ "${PULSAR_CDS:-1}" = 1 ] || return 0
  ensure_java
  local jsa
  jsa=$(cds_archive)
  if [ -f "$jsa" ]; then log "class-data-sharing archive present ($(basename "$jsa"))"; return 0; fi
  # Training run: start a throw-away broker on free ports, let the health check produce and
  # consume once, stop it; the JVM writes the loaded classes to the archive as it exits.
  local t0=$SECONDS scratch
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/porpoise-pulsar-cds.XXXXXX")
  log "recording class-data-sharing archive (one broker start/stop)..."
  (
    set_data "$scratch"
    BROKER_PORT=$(free_port); WEB_PORT=$(free_port); BOOKIE_PORT=$(free_port)
    CDS_OPTS=(-XX:ArchiveClassesAtExit="$jsa.tmp")
    STOP_TIMEOUT=180
    cmd_start >/dev/null && cmd_stop
  ) || log "training run failed (see $scratch/logs); the broker still works, it just starts slower"
  if [ -s "$jsa.tmp" ]; then
    mv "$jsa.tmp" "$jsa"
    rm -rf "$scratch"
    log "archive $(basename "$jsa") ($(du -h "$jsa" | cut -f1)) recorded in $((SECONDS - t0)) s"
  else
    rm -f "$jsa.tmp"
    log "no archive written; the broker still works, it just starts slower"
  fi
}

read_pid() { [ -f "$PIDFILE" ] && cat "$PIDFILE" 2>/dev/null || true; }

# Our broker, alive? (pid file may be stale after a reboot; check the command line too)
running_pid() {
  local pid
  pid=$(read_pid)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$MAIN" \
    && echo "$pid"
  return 0
}

# Ready = the broker's health check (a produce/consume round trip through the bookie) passes AND
# the standalone starter has created the public/default namespace, which it does only after the
# broker is already up (a client that comes in between gets TopicNotFound).
healthy() {
  local out
  out=$(curl -fsS --max-time 5 "http://127.0.0.1:$WEB_PORT/admin/v2/brokers/health" 2>/dev/null) || return 1
  [ "$out" = ok ] || return 1
  out=$(curl -fsS --max-time 5 "http://127.0.0.1:$WEB_PORT/admin/v2/namespaces/public" 2>/dev/null) || return 1
  [[ "$out" == *'"public/default"'* ]]
}

url() { echo "pulsar://127.0.0.1:$BROKER_PORT"; }

launch() {
  mkdir -p "$DATA/conf" "$LOGDIR" "$DATA/metadata" "$DATA/bookkeeper"
  sed -e "s/^brokerServicePort=.*/brokerServicePort=$BROKER_PORT/" \
      -e "s/^webServicePort=.*/webServicePort=$WEB_PORT/" \
      "$HERE/standalone.conf" >"$DATA/conf/standalone.conf"
  # Native libs (rocksdb, netty epoll, zstd, ...) are extracted to java.io.tmpdir at run time.
  rm -rf "$DATA/tmp" && mkdir -p "$DATA/tmp"
  local java jsa
  java=$(find_java)
  local -a opts=(
    -Xms"$HEAP" -Xmx"$HEAP" -XX:MaxDirectMemorySize="$DIRECT"
    -XX:+UseG1GC -XX:MaxGCPauseMillis=50 -XX:-OmitStackTraceInFastThrow
    # C1 only: on 2 busy cores C2 compiles double the start-up time; a test broker needs no peak.
    -XX:TieredStopAtLevel=1
    -Xss512k -XX:ReservedCodeCacheSize=64m -XX:MaxMetaspaceSize=192m
    -Djava.io.tmpdir="$DATA/tmp" -Djava.net.preferIPv4Stack=true
    -Dio.netty.tryReflectionSetAccessible=true -Dio.netty.leakDetection.level=disabled
    -Dpulsar.allocator.exit_on_oom=true
    -Dlog4j.configurationFile="$HERE/log4j2.xml" -Dlog4j.shutdownHookEnabled=false
    -Dlog4j2.is.webapp=false -Dpulsar.log.dir="$LOGDIR"
    -Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver
    -Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver
    --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED
    --add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED
  )
  if [ ${#CDS_OPTS[@]} -gt 0 ]; then
    opts+=("${CDS_OPTS[@]}")
  else
    jsa=$(cds_archive)
    [ -f "$jsa" ] && opts+=(-XX:SharedArchiveFile="$jsa")
  fi
  # shellcheck disable=SC2206
  [ -n "${PULSAR_EXTRA_OPTS:-}" ] && opts+=($PULSAR_EXTRA_OPTS)
  log "starting broker $(url), web http://127.0.0.1:$WEB_PORT, bookie :$BOOKIE_PORT, data $DATA"
  # Data is kept across restarts (no --wipe-data): delete $DATA for a fresh broker.
  # stdout/stderr (JVM warnings, crashes) go to a file, never to a pipe.
  (cd "$DATA" && exec setsid "$java" "${opts[@]}" -cp "$LIB/*" "$MAIN" \
      --config "$DATA/conf/standalone.conf" -nfw -nss -a 127.0.0.1 \
      --metadata-dir "$DATA/metadata" --bookkeeper-dir "$DATA/bookkeeper" \
      --bookkeeper-port "$BOOKIE_PORT" \
      </dev/null >>"$LOGDIR/pulsar.out" 2>&1) &
  echo $! >"$PIDFILE"
}

cmd_start() {
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    if healthy; then log "already running (pid $pid, data $DATA)"; url; return 0; fi
    log "running (pid $pid) but not healthy yet; waiting"
  else
    lib_complete || die "$LIB is missing or stale: run '$0 build' first"
    ensure_java
    local p
    for p in "$BROKER_PORT" "$WEB_PORT" "$BOOKIE_PORT"; do
      port_busy "$p" && die "127.0.0.1:$p is already in use (set PULSAR_BROKER_PORT/PULSAR_WEB_PORT/PULSAR_BOOKIE_PORT)"
    done
    launch
    pid=$(read_pid)
  fi
  local t0=$SECONDS
  while ! healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker exited during start-up; last lines of $LOGDIR:"
      tail -n 40 "$LOGDIR/pulsar.out" >&2 || true
      tail -n 60 "$LOGDIR/pulsar.log" >&2 || true
      rm -f "$PIDFILE"
      return 1
    fi
    if [ $((SECONDS - t0)) -ge "$START_TIMEOUT" ]; then
      log "broker not healthy after ${START_TIMEOUT}s; last lines of $LOGDIR/pulsar.log:"
      tail -n 60 "$LOGDIR/pulsar.log" >&2 || true
      tail -n 20 "$LOGDIR/pulsar.out" >&2 || true
      cmd_stop || true
      return 1
    fi
    sleep 0.5
  done
  local rss
  rss=$(awk '/VmRSS/{printf "%d MiB", $2/1024}' "/proc/$pid/status" 2>/dev/null || true)
  log "ready in $((SECONDS - t0)) s (pid $pid, rss $rss)"
  url
}

cmd_stop() {
  local pid
  pid=$(running_pid)
  if [ -z "$pid" ]; then rm -f "$PIDFILE"; log "not running"; return 0; fi
  log "stopping pid $pid"
  # The bookie has its own JVM shutdown hook that runs beside the broker's, so on a bare SIGTERM it
  # can go away while the broker is still closing topics. Ask the broker to shut down first
  # (unload topics, persist cursors, close ledgers), then signal the JVM to let the bookie go.
  curl -fsS -o /dev/null --max-time 20 -X POST "http://127.0.0.1:$WEB_PORT/admin/v2/brokers/shutdown" 2>/dev/null \
    || log "graceful broker shutdown request failed; signalling anyway"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after ${STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_status() {
  local pid
  pid=$(running_pid)
  if [ -z "$pid" ]; then log "stopped (data $DATA)"; return 3; fi
  if healthy; then
    log "running and healthy (pid $pid, web http://127.0.0.1:$WEB_PORT, data $DATA)"
    url
    return 0
  fi
  log "running (pid $pid) but not healthy"
  return 1
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop; cmd_start ;;
  *) echo "usage: $0 build|start|stop|status|restart" >&2; exit 2 ;;
esac
