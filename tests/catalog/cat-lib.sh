# tests/catalog/cat-lib.sh - the one preamble of the catalog tests:
#
#   . "$(dirname "$0")/cat-lib.sh"
#
# It sources ../lib.sh (scratch directory, vmc, fail/ok, requires), skips
# the test (exit 77) when a tool the catalog helpers use is missing
# (qemu-img, qemu-io, python3, sqlite3), and gives each test its own
# --home, made by `vm-clone init` (no other command creates a store).
# Every call goes through `vmc` with that home.

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version
requires sqlite3 --version

H=$T/home
export VMCLONE_HOME=$H
# The catalog backend: SQLite (catalog.db in the store), or PostgreSQL
# when VMC_TEST_PG holds a server's connection string (set by
# tests/catalog-pg/run.sh): each test's store gets a database of its own.
if [ -n "${VMC_TEST_PG:-}" ]; then
    PG_DB=t_$$_$RANDOM
    psql "$VMC_TEST_PG dbname=postgres" -Atqc "CREATE DATABASE $PG_DB" >/dev/null ||
        fail "CREATE DATABASE $PG_DB"
    vmc init -q --catalog "$VMC_TEST_PG dbname=$PG_DB" ||
        fail "vm-clone init --catalog (PostgreSQL)"
    STORE_CATALOG_FILE=catalog.conf     # what a store holds instead of catalog.db
else
    vmc init -q || fail "vm-clone init --home $H"
fi

# jq-like: jget FILE EXPR  (python expression over `d`, the parsed JSON)
jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

# sql QUERY: read the catalog of store $H through sqlite3 or psql (after
# the commands ended); rows as "a|b"
sql() {
    local conn
    conn=$(sed -n 's/^catalog=//p' "$H/catalog.conf" 2>/dev/null)
    if [ -n "$conn" ] && [ "$conn" != sqlite ]; then
        psql "$conn" -AtqX -v ON_ERROR_STOP=1 -c "$(pg_sql "$1")"
    else
        sqlite3 -batch -noheader "$H/catalog.db" "$1"
    fi
}

# pg_sql QUERY: the tests' few SQLite-only queries in PostgreSQL's terms.
# PostgreSQL always logs ahead (journal_mode), checks its own pages and
# enforces foreign keys at every statement (no integrity or foreign key
# check to run); the schema version and id sequences live elsewhere.
pg_sql() {
    case "$1" in
    'PRAGMA journal_mode') echo "SELECT 'wal'" ;;
    'PRAGMA integrity_check') echo "SELECT 'ok'" ;;
    'PRAGMA foreign_key_check') echo "SELECT 1 WHERE FALSE" ;;
    'PRAGMA user_version') echo "SELECT version FROM vmclone_schema" ;;
    *"FROM sqlite_sequence WHERE name = 'volumes'"*)
        echo "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM volumes_id_seq" ;;
    *) printf '%s\n' "$1" | sed 's/last_insert_rowid()/lastval()/g' ;;
    esac
}

# sqlite_only REASON: skip on PostgreSQL a test of SQLite's own files.
sqlite_only() {
    [ -z "${VMC_TEST_PG:-}" ] || skip "SQLite only: $*"
}

# A small template image: 16 MiB qcow2 with some data.
mk_template() {
    qemu-img create -q -f qcow2 "$1" "${2:-16M}" || fail "qemu-img create $1"
    qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 8M 512k' "$1" >/dev/null ||
        fail "qemu-io $1"
}

# check_all_disks: every image in the pools passes qemu-img check.
check_all_disks() {
    local f rc out
    for f in "$H"/primary/*.qcow2 "$H"/secondary/*.qcow2; do
        [ -e "$f" ] || continue
        rc=0
        out=$(qemu-img check -q -U "$f" 2>&1) || rc=$?
        [ "$rc" = 0 ] || fail "qemu-img check $f exited $rc: $out"
    done
}

# fsck_clean: vm-clone fsck reports zero inconsistencies.
fsck_clean() {
    vmc fsck --json > "$T/fsck.json" || fail "fsck failed: $(cat "$T/fsck.json")"
    [ "$(jget "$T/fsck.json" 'd["inconsistencies"]')" = 0 ] ||
        fail "fsck: inconsistencies: $(cat "$T/fsck.json")"
}
