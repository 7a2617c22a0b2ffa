# tests/helpers/pg.sh - a throwaway PostgreSQL server for one test:
#
#   . tests/helpers/pg.sh
#   pg_start            # or exit 77 with the reason
#   ... "$PG_CONNINFO" (host=DIR user=postgres; add dbname=NAME) ...
#
# initdb + pg_ctl in a private directory (as the `postgres` user when run
# as root: initdb refuses root), Unix socket only (listen_addresses=''),
# fsync off (the cluster is thrown away), client_connection_check_interval
# 1 s. pg_start installs an EXIT trap that stops the server (pg_ctl stop
# -m immediate, then the postmaster's pid if pg_ctl failed) and removes
# the directory, also when the test fails. See
# /work/shared/notes/scale-out.md §2 and §8.

PG_DIR=
PG_CONNINFO=

_pg_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_stop() {
    local pid
    [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ] || return 0
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -s -w -t 10 \
            stop >/dev/null 2>&1 ||
        { pid=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) &&
          [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; }
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}

_pg_skip() {
    echo "SKIP: ${TEST_NAME:-pg}: $*" >&2
    exit 77
}

# pg_start: start the server; sets PG_DIR, PG_BIN, PG_CONNINFO, PG_START_MS.
pg_start() {
    local t0 t1
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$PG_BIN/initdb" ] ||
        _pg_skip "no PostgreSQL server (initdb): scripts/install-deps.sh installs postgresql"
    command -v psql >/dev/null ||
        _pg_skip "no psql: scripts/install-deps.sh installs postgresql"
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        _pg_skip "running as root without a 'postgres' user to run initdb as"
    fi
    t0=$(date +%s%N)
    # the socket path (DIR/.s.PGSQL.5432) must stay under 107 bytes
    PG_DIR=$(mktemp -d /tmp/vmcpg.XXXXXX) || _pg_skip "mktemp failed"
    trap pg_stop EXIT
    chmod 755 "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
    _pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 \
        --locale=C --no-sync --no-instructions >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; echo "FAIL: initdb" >&2; exit 1; }
    _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 -s \
        -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c client_connection_check_interval=1s" \
        start >/dev/null 2>&1 ||
        { cat "$PG_DIR/log" >&2; echo "FAIL: pg_ctl start" >&2; exit 1; }
    PG_CONNINFO="host=$PG_DIR user=postgres"
    psql "$PG_CONNINFO dbname=postgres" -Atqc 'SELECT 1' >/dev/null ||
        { echo "FAIL: the server does not answer" >&2; exit 1; }
    t1=$(date +%s%N)
    PG_START_MS=$(( (t1 - t0) / 1000000 ))
    export PG_DIR PG_BIN PG_CONNINFO PG_START_MS
}

# pg_createdb NAME: a database for one store.
pg_createdb() {
    psql "$PG_CONNINFO dbname=postgres" -Atqc "CREATE DATABASE \"$1\"" >/dev/null
}
