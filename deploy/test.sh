#!/usr/bin/env bash
# `make test`: installs what is missing, starts a throwaway NATS + Postgres on free loopback
# ports, runs every test of the workspace against them, and stops them again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash deploy/setup.sh
dir="$(mktemp -d /tmp/parley-test.XXXXXX)"
chmod 755 "$dir"
cleanup() { bash deploy/infra.sh stop "$dir" || true; rm -rf "$dir"; }
trap cleanup EXIT
bash deploy/infra.sh start "$dir" --test
# shellcheck disable=SC1091
. "$dir/env"
export RUST_LOG="${RUST_LOG:-warn}"
status=0
# `make lint`: formatting, clippy (warnings are errors), unused dependencies.
bash deploy/lint.sh || { echo "lint failed (see above)"; status=1; }
cargo build -p projector -p command-svc -p query-svc
cargo test --workspace --no-fail-fast -- --test-threads "${TEST_THREADS:-4}" "$@" 2>&1 | tee "$dir/test.log" || status=1
# One closing line over every test binary (cargo prints one "test result" per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$dir/test.log"
exit "$status"
