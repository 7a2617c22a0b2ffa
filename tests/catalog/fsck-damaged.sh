#!/bin/bash
# fsck-damaged: fsck runs SQLite's integrity check first and never writes
# to a damaged catalog (issue 9 finding 14). A catalog.db with a zeroed
# index page gets a report naming catalog.db, exit 1, and no change:
# a temporary file in a pool (which fsck removes from a sound store) is
# left in place, and the catalog file is byte-for-byte unchanged.
. "$(dirname "$0")/cat-lib.sh"
sqlite_only "it damages the pages of catalog.db"

mk_template t.qcow2
ok vmc template import t t.qcow2 -q
ok vmc clone t --name a -q --label k=v
fsck_clean
# zero the root page of the labels table's index (the commands ended, so
# the WAL is checkpointed into catalog.db)
root=$(sql "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_labels_1'")
psize=$(sql "PRAGMA page_size")
[ -n "$root" ] && [ -n "$psize" ] || fail "no labels index"
[ ! -e "$H/catalog.db-wal" ] || [ ! -s "$H/catalog.db-wal" ] || fail "WAL not checkpointed"
dd if=/dev/zero of="$H/catalog.db" bs="$psize" seek=$((root - 1)) count=1 \
   conv=notrunc status=none || fail "dd"
echo leftover > "$H/primary/.a-disk0-9.qcow2.tmp-999"
cp "$H/catalog.db" db.before

rc=0
vmc fsck > fsck.out 2> fsck.err || rc=$?
[ "$rc" = 6 ] || fail "fsck of a damaged catalog exited $rc, expected 6 (integrity): $(cat fsck.out fsck.err)"
grep -q 'catalog.db' fsck.out || fail "fsck did not name catalog.db: $(cat fsck.out)"
grep -q 'damaged: fsck changed nothing' fsck.out ||
    fail "fsck did not say it changed nothing: $(cat fsck.out)"
[ -e "$H/primary/.a-disk0-9.qcow2.tmp-999" ] ||
    fail "fsck removed a temporary file from a store whose catalog is damaged"
cmp -s db.before "$H/catalog.db" || fail "fsck wrote to the damaged catalog"
exit 0
