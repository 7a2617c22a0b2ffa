#!/bin/bash
# wedge: a template rm or retire racing the first clone of that template
# never wedges the store (issue 9 finding 1).
#  1. The state the old race left (a template-rm journal row of a dead
#     process whose template row cannot be deleted: its copy row was set
#     back to 'ready' under it): recovery cannot finish that row, and says
#     so in fsck, but every other command works; no raw SQL error anywhere.
#  2. template rm while the first clone's copy is being made: a clean
#     refusal naming the copy being created; template retire meanwhile
#     succeeds, the clone completes, and the template goes with its last VM.
. "$(dirname "$0")/cat-lib.sh"

raw_sql() {
    grep -iE 'constraint failed|sqlite|SQL logic|database is locked|no such (table|column)' "$@"
}

mk_template t.qcow2
mk_template u.qcow2
ok vmc template import t t.qcow2 -q
ok vmc clone t --name a -q
ok vmc rm a -q

# 1. the wedged state, made by hand: a dead template-rm that took over the
#    copy's volumes, with the copy row put back to 'ready'
true & dead=$!
wait "$dead"
sql "INSERT INTO journal(op, target, state, pid, started)
         VALUES ('template-rm', 't', 'running', $dead, 0);
     UPDATE templates SET state = 'deleting', journal_id = last_insert_rowid();
     UPDATE volumes SET state = 'deleting',
         journal_id = (SELECT max(id) FROM journal);"
jid=$(sql "SELECT max(id) FROM journal")
for cmd in "list" "template list" "config get"; do
    rc=0
    # shellcheck disable=SC2086
    vmc $cmd > out 2> err || rc=$?
    [ "$rc" = 0 ] || fail "'$cmd' exited $rc with an unfinished journal row: $(cat err)"
    raw_sql err out && fail "'$cmd' shows a raw SQL error"
done
ok vmc template import u u.qcow2 -q
ok vmc clone u --name b -q
ok vmc info b --json > /dev/null
rc=0
vmc fsck --json > fsck.json 2> fsck.err || rc=$?
[ "$rc" != 0 ] || fail "fsck exited 0 with a journal row it cannot finish"
grep -q "journal row $jid (template-rm t)" fsck.json ||
    fail "fsck does not report the unfinished journal row: $(cat fsck.json fsck.err)"
raw_sql fsck.json fsck.err && fail "fsck shows a raw SQL error: $(cat fsck.json)"
[ "$(jget fsck.json 'd["inconsistencies"]')" -ge 1 ] || fail "fsck counted no inconsistency"
# the row stays for a later attempt; the rest of the store is intact
[ "$(sql "SELECT state FROM journal WHERE id = $jid")" = running ] ||
    fail "the unfinished journal row was dropped"
ok vmc rm b -q
ok vmc template rm u -q

# 2. the race itself, on a fresh store
H=$T/home2
export VMCLONE_HOME=$H
ok vmc init -q
mk_template t2.qcow2
ok vmc template import t t2.qcow2 -q
rm -rf "$T/pause"
mkdir -p "$T/pause"
VMCLONE_PAUSE_AT=copy.before-commit VMCLONE_PAUSE_DIR=$T/pause \
    "$VMCLONE" clone t --name first > clone.out 2> clone.err &
pid=$!
for _ in $(seq 1 1000); do
    kill -0 "$pid" 2>/dev/null || break
    [ -e "$T/pause/paused" ] && break
    sleep 0.01
done
[ -e "$T/pause/paused" ] || fail "the clone never reached copy.before-commit: $(cat clone.err)"
rc=0
"$VMCLONE" template rm t > rm.out 2> rm.err || rc=$?
[ "$rc" != 0 ] || fail "template rm succeeded while the copy was being made"
grep -q "template copy 't@primary' is being created" rm.err ||
    fail "template rm did not name the copy being created: $(cat rm.err)"
raw_sql rm.err && fail "template rm shows a raw SQL error"
ok vmc template retire t --json > retire.json
[ "$(jget retire.json 'd.get("freed")')" != True ] ||
    fail "template retire freed a template whose copy is being made: $(cat retire.json)"
touch "$T/pause/go"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "the clone exited $rc after the refused rm: $(cat clone.err)"
ok vmc list -q > /dev/null
fsck_clean
ok vmc rm first -q
[ "$(sql "SELECT count(*) FROM templates")" = 0 ] ||
    fail "the retired template outlived its last VM: $(sql 'SELECT * FROM templates')"
[ "$(sql "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] ||
    fail "journal rows left running"
fsck_clean
check_all_disks
exit 0
