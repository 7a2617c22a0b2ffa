# tests/helpers/pgbouncer.sh - a throwaway PgBouncer in session-pooling
# mode in front of a PostgreSQL database, for one test or bench:
#
#   . tests/helpers/pg.sh; . tests/helpers/pgbouncer.sh
#   pg_start; pg_createdb d
#   pgb_start d          # or exit 77 with the reason
#   ... "$PGB_CONNINFO" (host=DIR port=6432 user=postgres dbname=d) ...
#
# Session mode: a client keeps one server connection until it
# disconnects, then PgBouncer runs DISCARD ALL on it (releasing the
# session's advisory locks and settings) and gives it to the next
# client, whose queries then find that backend's caches warm. Unix
# socket only, trust authentication. The caller stops it with pgb_stop
# (a test: cleanup_fn pgb_stop; a script: in its EXIT trap).

PGB_DIR=
PGB_CONNINFO=

pgb_stop() {
    local pid
    [ -n "$PGB_DIR" ] && [ -d "$PGB_DIR" ] || return 0
    pid=$(cat "$PGB_DIR/pgb.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$PGB_DIR"
    PGB_DIR=
}

# pgb_start DBNAME: a pooler for database DBNAME of the server pg_start
# started; sets PGB_DIR and PGB_CONNINFO.
pgb_start() {
    local bin i
    bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
    [ -x "$bin" ] ||
        _pg_skip "no pgbouncer: scripts/install-deps.sh installs pgbouncer"
    PGB_DIR=$(mktemp -d /tmp/vmcpgb.XXXXXX) || _pg_skip "mktemp failed"
    cat > "$PGB_DIR/pgb.ini" <<INI
[databases]
$1 = host=$PG_DIR dbname=$1 user=postgres
[pgbouncer]
listen_addr =
unix_socket_dir = $PGB_DIR
listen_port = 6432
auth_type = trust
auth_file = $PGB_DIR/users.txt
pool_mode = session
server_reset_query = ${PGB_RESET_QUERY:-DISCARD ALL}
default_pool_size = 60
max_client_conn = 400
logfile = $PGB_DIR/pgb.log
pidfile = $PGB_DIR/pgb.pid
INI
    echo '"postgres" ""' > "$PGB_DIR/users.txt"
    chmod 755 "$PGB_DIR"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$PGB_DIR"
    _pg_as "$bin" -d "$PGB_DIR/pgb.ini" > "$PGB_DIR/start.log" 2>&1 ||
        { cat "$PGB_DIR/start.log" "$PGB_DIR/pgb.log" >&2; echo "FAIL: pgbouncer start" >&2; exit 1; }
    PGB_CONNINFO="host=$PGB_DIR port=6432 user=postgres dbname=$1"
    for i in $(seq 1 100); do
        psql "$PGB_CONNINFO" -Atqc 'SELECT 1' > /dev/null 2>&1 && break
        sleep 0.05
    done
    psql "$PGB_CONNINFO" -Atqc 'SELECT 1' > /dev/null ||
        { cat "$PGB_DIR/pgb.log" >&2; echo "FAIL: pgbouncer does not answer" >&2; exit 1; }
    export PGB_DIR PGB_CONNINFO
}
