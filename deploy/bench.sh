#!/usr/bin/env bash
# `make bench`: release build, fresh NATS + Postgres (in .run/bench, durable settings: fsync
# on), then the `bench` binary runs S1, S5, S3, S4, S7, S2 and S6, each beside its in-run baseline, and
# prints the Markdown table (also saved to .run/bench/report.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash deploy/setup.sh
cargo build --release --bins -p command-svc -p query-svc -p projector -p parley-tests
dir="$root/.run/bench"
bash deploy/infra.sh fresh "$dir" --bench
trap 'bash deploy/infra.sh stop "$dir" || true' EXIT
# shellcheck disable=SC1091
. "$dir/env"
export RUST_LOG="${RUST_LOG:-warn}"
# S7 holds 10,000 sockets on each side (the bench's clients and the query service).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
target/release/bench | tee "$dir/report.md"
