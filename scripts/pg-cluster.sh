#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and the benchmark: a data
# directory of its own, a free port on 127.0.0.1, trust authentication for
# the user `lic`, fsync off (tests only; PG_FSYNC=on and
# PG_SYNCHRONOUS_COMMIT=off are what the benchmark uses, and says so).
#
#   scripts/pg-cluster.sh start DIR   # prints the admin URL: postgres://lic@127.0.0.1:PORT/postgres
#   scripts/pg-cluster.sh stop DIR
#   scripts/pg-cluster.sh restart DIR # same port, same data
#
# PostgreSQL refuses to run as root; as root the cluster belongs to the
# `postgres` user, which Debian's package creates.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
  echo "pg-cluster: PostgreSQL is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
cmd=${1:?start, stop or restart}
dir=${2:?the cluster directory}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local ssl=""
  # PG_SSL_DIR: a folder with server.crt and server.key, for a cluster that
  # also speaks TLS (the TLS test makes them).
  if [ -n "${PG_SSL_DIR:-}" ]; then
    cp "$PG_SSL_DIR/server.crt" "$PG_SSL_DIR/server.key" "$dir/"
    chmod 600 "$dir/server.key"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/server.crt" "$dir/server.key"; fi
    ssl="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
  fi
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 start \
    -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c synchronous_commit=${PG_SYNCHRONOUS_COMMIT:-on} -c max_connections=300 $ssl" >/dev/null
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$dir"
      # `postgres` must reach DIR: a temporary parent (mode 700) is opened
      # for traversal only.
      chmod a+x "$(dirname "$dir")"
    fi
    if [ ! -d "$dir/data" ]; then
      as_owner "$PGBIN/initdb" -D "$dir/data" -A trust -U lic --no-sync -E UTF8 >/dev/null
      free_port > "$dir/port"
      if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/port"; fi
    fi
    start
    echo "postgres://lic@127.0.0.1:$(cat "$dir/port")/postgres"
    ;;
  stop)
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  restart)
    start
    ;;
  *)
    echo "pg-cluster: unknown command $cmd (start, stop or restart)" >&2
    exit 2
    ;;
esac
