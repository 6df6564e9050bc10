#!/usr/bin/env bash
# Starts or stops a throwaway NATS (JetStream) + PostgreSQL pair on loopback, on free ports.
#
#   deploy/infra.sh start DIR [--test|--bench]   start both; write DIR/env (shell exports)
#   deploy/infra.sh fresh DIR [--test|--bench]   stop, wipe DIR, then start
#   deploy/infra.sh stop DIR                     stop both (data stays in DIR)
#
# DIR/env exports PARLEY_NATS_URL and PARLEY_DATABASE_URL. Postgres refuses to run as root,
# so the cluster belongs to the `postgres` user and every pg command goes through runuser.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
cmd="${1:?usage: infra.sh start|fresh|stop DIR}"
dir="$(mkdir -p "${2:?usage: infra.sh start|fresh|stop DIR}" && cd "$2" && pwd)"
mode="${3:-}"

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop() {
  if [ -f "$dir/nats.pid" ]; then
    kill "$(cat "$dir/nats.pid")" 2>/dev/null || true
    rm -f "$dir/nats.pid"
  fi
  if [ -f "$dir/pg/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

port_free() { python3 -c 'import socket,sys;s=socket.socket();s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }

# The port of `var` in an existing DIR/env (empty when none).
old_port() {
  [ -f "$dir/env" ] || return 0
  sed -nE "s|^export $1=.*:([0-9]+)(/.*)?\$|\1|p" "$dir/env" | head -n1
}

# A persistent DIR (make run) keeps its ports across runs while they are free, so URLs and
# DIR/env stay valid; throwaway ones (--test, --bench) take fresh free ports.
pick_port() {
  local previous="$1"
  if [ -z "$mode" ] && [ -n "$previous" ] && port_free "$previous"; then
    echo "$previous"
  else
    if [ -z "$mode" ] && [ -n "$previous" ]; then
      echo "infra: port $previous is taken; using another" >&2
    fi
    free_port
  fi
}

start() {
  stop
  local nats_port pg_port
  nats_port="$(pick_port "$(old_port PARLEY_NATS_URL)")"
  pg_port="$(pick_port "$(old_port PARLEY_DATABASE_URL)")"
  mkdir -p "$dir/nats"
  "$root/.venv/bin/nats-server" -a 127.0.0.1 -p "$nats_port" -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
  echo $! >"$dir/nats.pid"

  if [ ! -f "$dir/pg/PG_VERSION" ]; then
    mkdir -p "$dir/pg"
    chown postgres:postgres "$dir/pg"
    chmod 700 "$dir/pg"
    as_pg "$PG_BIN/initdb" -D "$dir/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  fi
  chown postgres:postgres "$dir" "$dir/pg"
  local extra=""
  if [ "$mode" = "--test" ]; then extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
  if [ "$mode" = "--bench" ]; then extra="-c shared_buffers=2GB -c max_wal_size=8GB -c checkpoint_timeout=30min"; fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$dir -c max_connections=300 $extra" \
    start >/dev/null

  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null; then break; fi
    sleep 0.05
  done
  as_pg psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname='parley'" | grep -q 1 ||
    as_pg psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qc "CREATE DATABASE parley" >/dev/null
  cat >"$dir/env" <<ENV
export PARLEY_NATS_URL=nats://127.0.0.1:$nats_port
export PARLEY_DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/parley
ENV
}

# Stops, wipes and recreates DIR (readable by the postgres user), then starts.
fresh() {
  stop
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 755 "$(dirname "$dir")" "$dir"
  start
}

case "$cmd" in
  start) start ;;
  fresh) fresh ;;
  stop) stop ;;
  *) echo "usage: infra.sh start|fresh|stop DIR" >&2; exit 2 ;;
esac
