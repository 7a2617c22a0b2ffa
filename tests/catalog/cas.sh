#!/bin/bash
# cas: every row state change of a journaled operation is a compare-and-set
# on the state it expects (src/catalog/journal.c, cat_op_cas). A state
# change from a state that has changed meanwhile fails with exit 1 (an
# error, EXIT STATUS in vm-clone(1)) and a clear message, and leaves the
# rows and files as they were.
#  1. A clone's first template copy is paused between its stage
#     ('creating' rows committed) and its final commit (VMCLONE_PAUSE_AT).
#     `template rm` must not take over the copy's 'creating' volumes
#     (creating -> deleting): it refuses, the clone completes.
#  2. The same pause; another writer (a template rm that died) sets the
#     copy's rows 'deleting'. The copy's final commit must not set them
#     back to 'ready': the clone fails and the rows and files stay as the
#     other writer left them; the next command rolls that delete forward.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/catalog/cat-lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version
requires sqlite3 --version

mk_template t.qcow2
ok vmc template import t t.qcow2 -q

rows() {
    sql "SELECT 'template', id, state, journal_id FROM templates ORDER BY id"
    sql "SELECT 'copy', id, state, journal_id FROM template_copies ORDER BY id"
    sql "SELECT 'volume', id, state, journal_id FROM volumes ORDER BY id"
}
files() {
    ls -A "$H"/primary "$H"/secondary
}
# Start a clone of t as $1, paused before its template copy's commit.
clone_paused() {
    rm -rf "$T/pause"
    mkdir -p "$T/pause"
    VMCLONE_PAUSE_AT=copy.before-commit VMCLONE_PAUSE_DIR=$T/pause \
        "$VMCLONE" clone t --name "$1" > clone.out 2> clone.err &
    pid=$!
    for _ in $(seq 1 1000); do
        kill -0 "$pid" 2>/dev/null || break
        [ -e "$T/pause/paused" ] && break
        sleep 0.01
    done
    [ -e "$T/pause/paused" ] || fail "the clone never reached copy.before-commit: $(cat clone.err)"
}
# Let the paused clone go on; $rc its exit status.
clone_resume() {
    touch "$T/pause/go"
    rc=0
    wait "$pid" || rc=$?
}

# 1. template rm while the copy is being made: refused, nothing taken over
clone_paused first
rows > rows.before
files > files.before
rc=0
"$VMCLONE" template rm t > rm.out 2> rm.err || rc=$?
[ "$rc" = 5 ] || fail "template rm exited $rc, expected 5 (busy): $(cat rm.err)"
grep -q "template 't' changed state during this template-rm" rm.err ||
    fail "template rm failed without a clean refusal: $(cat rm.err)"
grep -qi 'sql\|constraint\|statement' rm.err &&
    fail "the refusal is a raw SQL error: $(cat rm.err)"
rows > rows.after
cmp -s rows.before rows.after ||
    fail "template rm changed rows it refused: $(diff rows.before rows.after)"
files > files.after
cmp -s files.before files.after ||
    fail "template rm changed files it refused: $(diff files.before files.after)"
clone_resume
[ "$rc" = 0 ] || fail "the clone exited $rc after the refused rm: $(cat clone.err)"
ok vmc info first --json > /dev/null
ok vmc rm first
ok vmc gc > /dev/null
[ "$(sql "SELECT count(*) FROM template_copies")" = 0 ] || fail "gc left the copy"

# 2. another writer marks the copy deleting: the copy's commit refuses
clone_paused second
true & dead=$!
wait "$dead"
sql "INSERT INTO journal(op, target, state, pid, started)
         VALUES ('template-rm', 't', 'running', $dead, 0);
     UPDATE template_copies SET state = 'deleting', journal_id = last_insert_rowid()
         WHERE state = 'creating';
     UPDATE volumes SET state = 'deleting', journal_id =
         (SELECT max(id) FROM journal) WHERE copy_id IS NOT NULL AND state = 'creating'"
rows > rows.before
files > files.before
clone_resume
[ "$rc" = 5 ] || fail "the clone exited $rc, expected 5 (busy): $(cat clone.err)"
grep -q 'changed state during this copy' clone.err ||
    fail "the clone failed without a clean refusal: $(cat clone.err)"
grep -qi 'sql\|constraint\|statement' clone.err &&
    fail "the refusal is a raw SQL error: $(cat clone.err)"
rows > rows.after
cmp -s rows.before rows.after ||
    fail "the clone changed rows it no longer owned: $(diff rows.before rows.after | tr "\n" " ")"
files > files.after
cmp -s files.before files.after ||
    fail "the clone changed files it no longer owned: $(diff files.before files.after)"
[ "$(sql "SELECT count(*) FROM vms")" = 0 ] || fail "a VM row was left by the failed clone"
# the next command rolls the dead writer's delete forward
ok vmc list --json > /dev/null
fsck_clean
check_all_disks
[ "$(sql "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] ||
    fail "journal rows left running"
[ "$(sql "SELECT count(*) FROM template_copies")" = 0 ] ||
    fail "the dead writer's delete was not rolled forward: $(rows)"
exit 0
