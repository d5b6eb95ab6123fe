#!/usr/bin/env bash
# Install (Debian packages) and start a MariaDB server on 127.0.0.1:3306 for the tests, with a
# `porpoise` user (password `porpoise`, all privileges, so tests can create users) and database.
# Idempotent; needs root; works without systemd (the server is started directly, daemonised by
# mysqld_safe). Mirrors deploy/services/postgres.sh.
#
#   mariadb.sh [start]   install if needed, start, create the user and database
#   mariadb.sh stop      stop the server this script started; its data stays
#   mariadb.sh status    say whether it runs
#
#   PORPOISE_MARIADB_DIR   where data, socket, pid and log live (default /var/tmp/porpoise-mariadb)
#   PORPOISE_MARIADB_PORT  TCP port on 127.0.0.1 (default 3306)
set -euo pipefail
BASE=${PORPOISE_MARIADB_DIR:-/var/tmp/porpoise-mariadb}
PORT=${PORPOISE_MARIADB_PORT:-3306}
DATA=$BASE/data
SOCK=$BASE/mysqld.sock
PID=$BASE/mysqld.pid
LOG=$BASE/server.log
ACTION=${1:-start}
case "$ACTION" in
  start) ;;
  stop|status)
    ADMIN=$(command -v mariadb-admin || command -v mysqladmin || true)
    if [ -z "$ADMIN" ] || ! "$ADMIN" --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1; then
      echo "mariadb not running"; [ "$ACTION" = stop ] && exit 0 || exit 3
    fi
    if [ "$ACTION" = status ]; then echo "mariadb running on 127.0.0.1:$PORT"; exit 0; fi
    "$ADMIN" --no-defaults --socket="$SOCK" -uroot shutdown
    for _ in $(seq 1 60); do [ -e "$SOCK" ] || break; sleep 0.5; done
    echo "mariadb stopped"
    exit 0 ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

if ! command -v mariadbd >/dev/null 2>&1 && ! [ -x /usr/sbin/mariadbd ]; then
  export DEBIAN_FRONTEND=noninteractive
  # No init system here: keep the package's postinst from trying to start its own server.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
  fi
  trap 'if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
  apt-get update -qq
  apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
SAFE=$(command -v mysqld_safe || command -v mariadbd-safe)
ADMIN=$(command -v mariadb-admin || command -v mysqladmin)
CLIENT=$(command -v mariadb || command -v mysql)

mkdir -p "$BASE"
chown mysql:mysql "$BASE"
if [ ! -d "$DATA/mysql" ]; then
  mkdir -p "$DATA" && chown mysql:mysql "$DATA"
  "$(command -v mariadb-install-db || command -v mysql_install_db)" --no-defaults --user=mysql \
    --datadir="$DATA" --auth-root-authentication-method=socket --skip-test-db >/dev/null
fi

if ! "$ADMIN" --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1; then
  # --no-defaults: ignore /etc/mysql (its socket and datadir are the distribution's, not ours)
  setsid nohup "$SAFE" --no-defaults --user=mysql --datadir="$DATA" --socket="$SOCK" --pid-file="$PID" \
    --bind-address=127.0.0.1 --port="$PORT" --skip-name-resolve --log-error="$LOG" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci >/dev/null 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    "$ADMIN" --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$ADMIN" --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1 || { tail -n 30 "$LOG" >&2; exit 1; }
fi

"$CLIENT" --no-defaults --socket="$SOCK" -uroot <<'SQL'
DROP USER IF EXISTS ''@'localhost';
CREATE USER IF NOT EXISTS 'porpoise'@'%' IDENTIFIED BY 'porpoise';
CREATE USER IF NOT EXISTS 'porpoise'@'localhost' IDENTIFIED BY 'porpoise';
GRANT ALL PRIVILEGES ON *.* TO 'porpoise'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'porpoise'@'localhost' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS porpoise CHARACTER SET utf8mb4;
FLUSH PRIVILEGES;
SQL
echo "mariadb ready on 127.0.0.1:$PORT"
