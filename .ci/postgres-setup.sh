#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl) exist: the
# PostgreSQL tests start their own throwaway cluster from them, and fail
# without them. Installs Debian's `postgresql` package when they are missing.
set -euo pipefail

have_binaries() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_binaries; then
    echo "postgres-setup: PostgreSQL binaries present"
    exit 0
fi

echo "postgres-setup: installing the postgresql package"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "postgres-setup: not root and no sudo: install the postgresql package as root" >&2
        exit 1
    }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql >/dev/null
# The package's own cluster is not needed: the tests start their own.
if command -v pg_lsclusters >/dev/null 2>&1; then
    $SUDO service postgresql stop >/dev/null 2>&1 || true
fi

have_binaries || { echo "postgres-setup: initdb still missing" >&2; exit 1; }
echo "postgres-setup: done"
