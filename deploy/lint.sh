#!/usr/bin/env bash
# `make lint` (also run by `make test`): formatting, clippy with warnings as errors, and
# unused dependencies. Any finding fails. A tool this machine cannot have (a toolchain
# without the rustfmt or clippy component, no crates.io to install cargo-machete from) is
# reported and its check skipped, so a missing tool never passes for a clean result silently.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
skipped=()
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all --check
else
  skipped+=("rustfmt (rustup component add rustfmt)")
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --workspace --all-targets --quiet -- -D warnings
else
  skipped+=("clippy (rustup component add clippy)")
fi
if ! command -v cargo-machete >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-machete@0.9.2 || true
fi
if command -v cargo-machete >/dev/null 2>&1; then
  cargo machete
else
  skipped+=("cargo-machete (cargo install cargo-machete)")
fi
for s in "${skipped[@]}"; do
  echo "lint: SKIPPED ${s}: the tool is not installed" >&2
done
echo "lint: clean"
