#!/usr/bin/env bash
# `make import-chitchat`: fresh NATS + Postgres (in .run/import), release build of the
# services, then the importer sends and verifies the whole chitchat corpus.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash deploy/setup.sh
cargo build --release --bins -p command-svc -p query-svc -p projector -p parley-tests
dir="$root/.run/import"
bash deploy/infra.sh fresh "$dir"
# shellcheck disable=SC1091
. "$dir/env"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
key="import-$(head -c 12 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')"
export PARLEY_API_KEYS="$key=chitchat" RUST_LOG="${RUST_LOG:-warn}"
# A bulk import, not a tenant's traffic: the rate limits are off (docs/tenancy.md).
export PARLEY_RATE_LIMIT_TENANT_PER_S=0 PARLEY_RATE_LIMIT_USER_SENDS_PER_S=0 PARLEY_RATE_LIMIT_USER_READS_PER_S=0
export PARLEY_COMMAND_LISTEN="127.0.0.1:$(free_port)" PARLEY_QUERY_LISTEN="127.0.0.1:$(free_port)" PARLEY_PROJECTOR_LISTEN="127.0.0.1:$(free_port)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; bash deploy/infra.sh stop "$dir" || true; }
trap cleanup EXIT
target/release/projector migrate
target/release/projector & pids+=($!)
target/release/command-svc & pids+=($!)
target/release/query-svc & pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://$PARLEY_COMMAND_LISTEN/health" >/dev/null && curl -sf "http://$PARLEY_QUERY_LISTEN/health" >/dev/null && break; sleep 0.1; done
PARLEY_COMMAND_URL="http://$PARLEY_COMMAND_LISTEN" PARLEY_QUERY_URL="http://$PARLEY_QUERY_LISTEN" PARLEY_API_KEY="$key" \
PARLEY_CHITCHAT_PATH="$(.venv/bin/python -c 'import chitchat_dataset,os;print(os.path.join(os.path.dirname(chitchat_dataset.__file__),"dataset.json"))')" \
  target/release/import-chitchat
