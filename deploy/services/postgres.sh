#!/usr/bin/env bash
# Install (Debian packages) and start a PostgreSQL server on 127.0.0.1:5432 for the tests, with a
# `porpoise` role and database. Idempotent; needs root.
#
#   postgres.sh [start]   install if needed, start, create the role and database
#   postgres.sh stop      stop the server this script started (fast shutdown); its data stays
#   postgres.sh status    say whether it runs
set -euo pipefail
ACTION=${1:-start}
PGDATA=${PORPOISE_PGDATA:-/var/tmp/porpoise-pg}
case "$ACTION" in
  start) ;;
  stop|status)
    if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || [ ! -f "$PGDATA/PG_VERSION" ]; then
      echo "postgres not running (no server in $PGDATA)"; exit 0
    fi
    PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n1)")
    if ! su postgres -c "$PGBIN/pg_ctl -D $PGDATA status" >/dev/null 2>&1; then
      echo "postgres not running"; [ "$ACTION" = stop ] && exit 0 || exit 3
    fi
    if [ "$ACTION" = status ]; then echo "postgres running on 127.0.0.1:5432"; exit 0; fi
    su postgres -c "$PGBIN/pg_ctl -D $PGDATA -m fast -w stop" >/dev/null
    echo "postgres stopped"
    exit 0 ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n1)")
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA"
  # Local socket: trust (for this script); TCP: passwords checked, so password tests are real.
  su postgres -c "$PGBIN/initdb -D $PGDATA --auth-local=trust --auth-host=scram-sha-256 -U postgres" >/dev/null
fi
if ! su postgres -c "$PGBIN/pg_ctl -D $PGDATA status" >/dev/null 2>&1; then
  su postgres -c "$PGBIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -w -o '-c listen_addresses=127.0.0.1 -p 5432 -k /tmp' start" >/dev/null
fi
psql_() { su postgres -c "psql -h /tmp -p 5432 -U postgres -tAc \"$1\""; }
[ "$(psql_ "select 1 from pg_roles where rolname='porpoise'")" = 1 ] || psql_ "create role porpoise login password 'porpoise' superuser"
[ "$(psql_ "select 1 from pg_database where datname='porpoise'")" = 1 ] || psql_ "create database porpoise owner porpoise"
echo "postgres ready on 127.0.0.1:5432"
