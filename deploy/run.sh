#!/usr/bin/env bash
# `make run`: installs what is missing, starts NATS (JetStream) and a project-local Postgres on
# loopback (data in .run/dev, kept across runs, on the same ports while they are free), builds
# and starts the three services, waits until each one's /ready answers, prints the URLs and the
# dev API key, and stops everything on Ctrl-C. Dev tokens are on (the
# browser client at the query service's / uses them); the token secret is kept in .run/dev.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash deploy/setup.sh
dir="$root/.run/dev"
mkdir -p "$dir"
chmod 755 "$root/.run" "$dir"
if [ ! -f "$dir/api_key" ]; then
  echo "dev-$(head -c 18 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')" >"$dir/api_key"
fi
key="$(cat "$dir/api_key")"
if [ ! -f "$dir/master_key" ]; then
  head -c 48 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9' >"$dir/master_key"
fi
if [ ! -f "$dir/token_secret" ]; then
  head -c 48 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9' >"$dir/token_secret"
fi
cargo build --release -p command-svc -p query-svc -p projector
bash deploy/infra.sh start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
export PARLEY_API_KEYS="$key=dev"
export PARLEY_TOKEN_SECRET="$(cat "$dir/token_secret")"
# The admin API's key (docs/tenancy.md); kept in .run/dev/master_key.
export PARLEY_MASTER_KEY="$(cat "$dir/master_key")"
# Dev only: the browser client at / mints tokens for tenant `dev` without credentials.
export PARLEY_DEV_TOKENS="${PARLEY_DEV_TOKENS:-1}"
export PARLEY_DEV_TENANT=dev
export PARLEY_COMMAND_LISTEN="${PARLEY_COMMAND_LISTEN:-127.0.0.1:5001}"
export PARLEY_QUERY_LISTEN="${PARLEY_QUERY_LISTEN:-127.0.0.1:5002}"
export PARLEY_PROJECTOR_LISTEN="${PARLEY_PROJECTOR_LISTEN:-127.0.0.1:5003}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash deploy/infra.sh stop "$dir" || true
}
trap cleanup EXIT INT TERM
target/release/projector migrate
target/release/projector &
pids+=($!)
target/release/command-svc &
pids+=($!)
target/release/query-svc &
pids+=($!)
# "Running" only once every service is ready (or say which one is not).
for url in "http://$PARLEY_COMMAND_LISTEN/ready" "http://$PARLEY_QUERY_LISTEN/ready" \
  "http://$PARLEY_PROJECTOR_LISTEN/ready"; do
  ready=""
  for i in $(seq 1 3000); do
    if [ "$i" = 25 ]; then echo "run: waiting for $url" >&2; fi
    if curl -sf -o /dev/null "$url"; then ready=1; break; fi
    for p in "${pids[@]}"; do
      if ! kill -0 "$p" 2>/dev/null; then
        echo "run: a service exited before it was ready (see its log above)" >&2
        exit 1
      fi
    done
    sleep 0.2
  done
  if [ -z "$ready" ]; then
    echo "run: $url did not answer 200 within 600 s" >&2
    exit 1
  fi
done
cat <<MSG

Parley is running (Ctrl-C stops everything):
  command service  http://$PARLEY_COMMAND_LISTEN   (docs: /docs, spec: /openapi.json)
  query service    http://$PARLEY_QUERY_LISTEN   (docs: /docs; chat client: /; WebSocket: /v1/ws)
  projector        http://$PARLEY_PROJECTOR_LISTEN/metrics
  NATS             $PARLEY_NATS_URL
  Postgres         $PARLEY_DATABASE_URL
API key: $key
Master key: $PARLEY_MASTER_KEY   (admin API, docs/tenancy.md)

MSG
wait -n "${pids[@]}" || true
