# tests/catalog-pg/host-lib.sh - three "hosts" on one machine for the
# several-hosts tests: stores a, b and c (their own --home, --host-id a|b|c)
# sharing one PostgreSQL catalog (cat-lib.sh's database), a shared primary
# pool and host a's local secondary pool holding template t.
#
#   . "$(dirname "$0")/host-lib.sh"
#   on a clone t --pool shared --name x     # vm-clone on host a
#
# Sourced after cat-lib.sh (PostgreSQL only: skips on SQLite).
[ -n "${VMC_TEST_PG:-}" ] || skip "needs PostgreSQL (run through tests/catalog-pg/run.sh)"

DB="$VMC_TEST_PG dbname=$PG_DB"

# on HOST ARGS...: vm-clone on that host's store (stderr in $T/vmc.err)
on() {
    local h=$1
    shift
    VMCLONE_HOME=$T/host-$h vmc "$@"
}

# hsql QUERY: the shared catalog
hsql() {
    psql "$DB" -AtqX -v ON_ERROR_STOP=1 -c "$1"
}

for h in a b c; do
    VMCLONE_HOME=$T/host-$h vmc init -q --catalog "$DB" --host-id "$h" ||
        fail "init of host $h"
done
mkdir -p "$T/shared" "$T/sec-a"
on a pool add shared "$T/shared" --kind primary --shared -q || fail "pool add --shared"
on a pool add sec-a "$T/sec-a" --kind secondary -q || fail "pool add sec-a"
mk_template t.qcow2
on a template import t t.qcow2 --pool sec-a -q || fail "template import on a"

# no_files_of NAME: no file in the shared pool for VM NAME
no_files_of() {
    ! ls "$T/shared" | grep -q "^$1-disk" || fail "files of '$1' left: $(ls "$T/shared")"
}

# shared_disks_ok: every image in the shared pool passes qemu-img check
shared_disks_ok() {
    local f
    for f in "$T"/shared/*.qcow2; do
        [ -e "$f" ] || continue
        qemu-img check -q -U "$f" || fail "qemu-img check $f"
    done
}

# catalog_agrees: each VM row in the shared pool has its files and each
# of our files there has a row (fsck from host b: no inconsistency)
catalog_agrees() {
    on b fsck --json > "$T/fsck.json" 2>/dev/null || fail "fsck on b: $(cat "$T/fsck.json")"
    [ "$(jget "$T/fsck.json" 'd["inconsistencies"]')" = 0 ] ||
        fail "fsck on b: $(cat "$T/fsck.json")"
    [ "$(jget "$T/fsck.json" 'd["unknown_files"]')" = 0 ] ||
        fail "fsck on b: unknown files: $(cat "$T/fsck.json")"
    shared_disks_ok
}
