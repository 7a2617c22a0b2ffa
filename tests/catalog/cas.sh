#!/bin/bash
# cas: every row state change of a journaled operation is a compare-and-set
# on the state it expects (src/catalog/journal.c, cat_op_cas). A clone's
# first template copy is paused between its stage ('creating' rows
# committed) and its final commit (VMCLONE_PAUSE_AT); `template rm` then
# marks that copy 'deleting' and dies. The copy's final commit must not set
# the rows back to 'ready': the clone fails with exit 1 (an error, see
# EXIT STATUS in vm-clone(1)) and a clear message, the rows and files stay
# as template rm left them, and the next command recovers the dead rm.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/catalog/cat-lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version
requires sqlite3 --version

mk_template t.qcow2
ok vmc template import t t.qcow2 -q

mkdir -p "$T/pause"
VMCLONE_PAUSE_AT=copy.before-commit VMCLONE_PAUSE_DIR=$T/pause \
    "$VMCLONE" clone t --name racer > clone.out 2> clone.err &
pid=$!
for _ in $(seq 1 1000); do
    kill -0 "$pid" 2>/dev/null || break
    [ -e "$T/pause/paused" ] && break
    sleep 0.01
done
[ -e "$T/pause/paused" ] || fail "the clone never reached copy.before-commit: $(cat clone.err)"

# The copy is staged ('creating'); template rm marks it deleting and dies
# right after (its journal row waits for recovery).
rc=0
VMCLONE_CRASH_AT=delete.after-mark "$VMCLONE" template rm t \
    > rm.out 2> rm.err || rc=$?
[ "$rc" = 99 ] || fail "template rm exited $rc, expected its crash point (99): $(cat rm.err)"
rows() {
    sql "SELECT 'copy', id, state, journal_id FROM template_copies ORDER BY id"
    sql "SELECT 'volume', id, state, journal_id FROM volumes ORDER BY id"
}
rows > rows.before
ls "$H"/primary "$H"/secondary > files.before

touch "$T/pause/go"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 1 ] || fail "the clone exited $rc, expected 1: $(cat clone.err)"
grep -q 'changed state during this copy' clone.err ||
    fail "the clone failed without a clean refusal: $(cat clone.err)"
grep -qi 'sql\|constraint\|statement' clone.err &&
    fail "the refusal is a raw SQL error: $(cat clone.err)"

# Nothing was overwritten: the deleting marks and the files are as the
# dead template rm left them (sqlite3 reads the file without recovering).
rows > rows.after
cmp -s rows.before rows.after ||
    fail "the clone changed rows it no longer owned: $(diff rows.before rows.after)"
ls "$H"/primary "$H"/secondary > files.after
cmp -s files.before files.after ||
    fail "the clone changed files it no longer owned: $(diff files.before files.after)"
[ "$(sql "SELECT count(*) FROM vms")" = 0 ] || fail "a VM row was left by the failed clone"

# The next command recovers the dead rm: the template and its copy are
# gone, and the store is consistent.
ok vmc list --json > /dev/null
fsck_clean
check_all_disks
[ "$(sql "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] ||
    fail "journal rows left running"
[ "$(sql "SELECT count(*) FROM templates") $(sql "SELECT count(*) FROM template_copies") $(sql "SELECT count(*) FROM volumes")" = "0 0 0" ] ||
    fail "template rm was not rolled forward: $(rows)"
exit 0
