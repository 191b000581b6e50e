#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite.
#
#   scripts/test-postgres.sh start   initdb + start on 127.0.0.1, a free port, database marketplace_test
#   scripts/test-postgres.sh url     print the SQLAlchemy URL of the running cluster
#   scripts/test-postgres.sh stop    stop the cluster and delete its files
#   scripts/test-postgres.sh status  exit 0 when the cluster answers
#
# The cluster lives under /tmp (one per checkout, so two checkouts on one machine do not collide),
# listens only on 127.0.0.1, trusts loopback connections and trades durability for speed
# (fsync, full_page_writes and synchronous_commit off): it holds nothing worth keeping.
# initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEY="$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
STATE_DIR="${TEST_PG_DIR:-/tmp/marketplace-test-pg-$KEY}"
DATA_DIR="$STATE_DIR/data"
PORT_FILE="$STATE_DIR/port"
LOG_FILE="$STATE_DIR/postgres.log"
DATABASE="${TEST_PG_DATABASE:-marketplace_test}"
FIRST_PORT="${TEST_PG_PORT:-55432}"

die() { echo "test-postgres: $*" >&2; exit 1; }

pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$dir/initdb" ]] && { echo "$dir"; return; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(readlink -f "$(command -v initdb)")"; return; }
    die "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package 'postgresql'"
}

BIN="$(pg_bin)"

# Run a PostgreSQL tool as the owner of the cluster.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

port_is_free() {
    # Nothing answers on the port (bash's /dev/tcp connects; a refusal means it is free).
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

is_running() {
    [[ -f "$PORT_FILE" && -f "$DATA_DIR/postmaster.pid" ]] &&
        as_owner "$BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

url() {
    [[ -f "$PORT_FILE" ]] || die "not started (run: $0 start)"
    echo "postgresql+psycopg://postgres@127.0.0.1:$(cat "$PORT_FILE")/$DATABASE"
}

stop() {
    if [[ -f "$DATA_DIR/postmaster.pid" ]]; then
        as_owner "$BIN/pg_ctl" stop -D "$DATA_DIR" -m immediate -w -t 30 >/dev/null 2>&1 || true
    fi
    rm -rf "$STATE_DIR"
}

start() {
    # A cluster left by an interrupted run is stopped and thrown away: every run starts clean.
    stop
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' user: install the Debian package 'postgresql'"
    fi
    mkdir -p "$STATE_DIR"
    chmod 700 "$STATE_DIR"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$STATE_DIR"

    as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        --no-sync >"$STATE_DIR/initdb.log" 2>&1 || { cat "$STATE_DIR/initdb.log" >&2; die "initdb failed"; }

    local port="$FIRST_PORT" tries=0
    while true; do
        while ! port_is_free "$port"; do
            port=$((port + 1))
        done
        if as_owner "$BIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t 30 -o "\
            -c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$STATE_DIR' \
            -c fsync=off -c full_page_writes=off -c synchronous_commit=off \
            -c max_connections=100 -c shared_buffers=64MB" >/dev/null; then
            break
        fi
        # Somebody took the port between the check and the start: try the next one.
        tries=$((tries + 1))
        if [[ $tries -ge 5 ]]; then
            cat "$LOG_FILE" >&2 || true
            die "could not start PostgreSQL"
        fi
        port=$((port + 1))
    done
    echo "$port" >"$PORT_FILE"
    as_owner "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE DATABASE $DATABASE" >/dev/null
    echo "test-postgres: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" \
        "(data in $DATA_DIR)" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    status) is_running ;;
    *) echo "usage: $0 start|stop|url|status" >&2; exit 2 ;;
esac
