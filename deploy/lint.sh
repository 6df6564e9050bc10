#!/usr/bin/env bash
# `make lint` (also run by `make test`): formatting, clippy with warnings as errors, and
# unused dependencies. Installs cargo-machete from crates.io when it is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
if ! command -v cargo-machete >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-machete@0.9.2
fi
cargo machete
