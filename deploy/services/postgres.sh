#!/usr/bin/env bash
# Install (Debian packages) and start a PostgreSQL server on 127.0.0.1:5432 for the tests, with a
# `porpoise` role and database. Idempotent.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n1)")
PGDATA=${PORPOISE_PGDATA:-/var/tmp/porpoise-pg}
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
