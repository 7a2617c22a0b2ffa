#!/bin/bash
# race (PostgreSQL only): `template rm` against a clone of the same
# template on a catalog without SQLite's single writer lock.
#  1. The race of a straight port, at the SQL level: a clone inserts its
#     volume under the template copy (not committed) while rm counts the
#     copy's dependents (0: it cannot see the insert), marks it deleting
#     and commits; the clone commits too: a live volume on a parent that
#     is being deleted.
#  2. The same interleaving with the catalog's locks (the clone takes
#     FOR SHARE on its parent, rm FOR UPDATE on its set before counting):
#     rm waits for the clone's commit, then counts 1.
#  3. End to end: a real clone paused inside its first transaction
#     (clone.before-stage); `template rm` waits, then refuses (exit 4,
#     one dependent) and the clone is sound.
. "$(dirname "$0")/../catalog/cat-lib.sh"
[ -n "${VMC_TEST_PG:-}" ] || skip "needs PostgreSQL (run through tests/catalog-pg/run.sh)"

DB="$VMC_TEST_PG dbname=$PG_DB"
mk_template t.qcow2
ok vmc template import t t.qcow2 -q
ok vmc clone t --name first -q      # makes the copy in 'primary'
ok vmc rm first -q
tid=$(sql "SELECT id FROM templates WHERE name = 't'")
cv=$(sql "SELECT v.id FROM volumes v JOIN template_copies c ON c.id = v.copy_id WHERE c.template_id = $tid")
[ -n "$cv" ] || fail "no template copy volume"
owned="SELECT id FROM volumes WHERE template_id = $tid OR copy_id IN (SELECT id FROM template_copies WHERE template_id = $tid)"

# session NAME: a psql session fed through the fifo $T/NAME.in (fd 7 or 8)
start_session() {
    mkfifo "$T/$1.in"
    psql "$DB application_name=$1" -AtqX < "$T/$1.in" > "$T/$1.out" 2>&1 &
    eval "${1}_pid=$!"
}
# wait_state NAME STATE: the session reached STATE ('idle in transaction',
# or 'active' with wait_event_type Lock for "blocked")
wait_idle() {
    local i
    for i in $(seq 1 500); do
        [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND state = 'idle in transaction' AND query LIKE '$2%'")" = 1 ] && return 0
        sleep 0.02
    done
    fail "session $1 never ran '$2': $(cat "$T/$1.out")"
}
blocked() {
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND wait_event_type = 'Lock'")" = 1 ]
}
insert_clone_volume="INSERT INTO vms(name, uuid, state, pool_id, cpus, memory_mb, created) VALUES ('racer', 'u-racer', 'creating', 1, 1, 1, 0);
INSERT INTO volumes(pool_id, file, format, virtual_size, disk, parent_id, state, vm_id, top, created) SELECT 1, 'racer.qcow2', 'qcow2', 1, 0, $cv, 'creating', id, 1, 0 FROM vms WHERE name = 'racer';"
dependents="SELECT count(*) FROM volumes WHERE parent_id IN ($owned) AND id NOT IN ($owned)"

# --- 1. the straight port: both commit
start_session clone
exec 7> "$T/clone.in"
echo "BEGIN; SELECT state FROM volumes WHERE id = $cv;" >&7
echo "$insert_clone_volume" >&7
wait_idle clone "INSERT INTO volumes"
n=$(psql "$DB" -AtqX -c "BEGIN" -c "$dependents" -c "UPDATE volumes SET state = 'deleting' WHERE id IN ($owned)" -c "COMMIT" | head -1)
[ "$n" = 0 ] || fail "straight port: rm counted $n dependents, the race needs 0"
echo "COMMIT;" >&7
exec 7>&-
wait "$clone_pid"
[ "$(sql "SELECT count(*) FROM volumes v JOIN volumes p ON p.id = v.parent_id WHERE p.state = 'deleting' AND v.state = 'creating'")" = 1 ] ||
    fail "straight port: the race did not reproduce"
note "straight port: rm counted 0 dependents while a clone added one; both committed"
# undo, to run the same interleaving with the locks
sql "DELETE FROM volumes WHERE file = 'racer.qcow2'; DELETE FROM vms WHERE name = 'racer'; UPDATE volumes SET state = 'ready' WHERE id IN ($owned)" > /dev/null

# --- 2. with the locks: rm waits for the clone, then counts 1
rm -f "$T/clone.in"
start_session clone
exec 7> "$T/clone.in"
echo "BEGIN; SELECT id FROM volumes WHERE id = $cv AND state = 'ready' FOR SHARE;" >&7
echo "$insert_clone_volume" >&7
wait_idle clone "INSERT INTO volumes"
psql "$DB application_name=rm" -AtqX -c "BEGIN" -c "SELECT id FROM volumes WHERE id IN ($owned) ORDER BY id FOR UPDATE" -c "$dependents" -c "ROLLBACK" > "$T/rm.out" 2>&1 &
rm_pid=$!
for _ in $(seq 1 200); do blocked rm && break; sleep 0.02; done
blocked rm || fail "with the locks: rm did not wait for the clone: $(cat "$T/rm.out")"
echo "COMMIT;" >&7
exec 7>&-
wait "$clone_pid"
wait "$rm_pid" || fail "rm session failed: $(cat "$T/rm.out")"
[ "$(tail -1 "$T/rm.out")" = 1 ] || fail "with the locks: rm counted $(tail -1 "$T/rm.out"), expected 1"
note "with FOR SHARE / FOR UPDATE: rm waited for the clone and counted 1"
sql "DELETE FROM volumes WHERE file = 'racer.qcow2'; DELETE FROM vms WHERE name = 'racer'" > /dev/null

# --- 3. end to end
mkdir -p "$T/pause"
VMCLONE_PAUSE_AT=clone.before-stage VMCLONE_PAUSE_DIR=$T/pause \
    "$VMCLONE" clone t --name second > clone.out 2> clone.err &
cpid=$!
for _ in $(seq 1 1000); do
    [ -e "$T/pause/paused" ] && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.01
done
[ -e "$T/pause/paused" ] || fail "the clone never reached clone.before-stage: $(cat clone.err)"
"$VMCLONE" template rm t > trm.out 2> trm.err &
rpid=$!
sleep 1
kill -0 "$rpid" 2>/dev/null ||
    fail "template rm did not wait for the clone's transaction: $(cat trm.err)"
touch "$T/pause/go"
wait "$cpid" || fail "the clone failed: $(cat clone.err)"
rc=0
wait "$rpid" || rc=$?
[ "$rc" = 4 ] || fail "template rm exited $rc, expected 4 (conflict: a dependent): $(cat trm.err)"
grep -q "1 dependent" trm.err || fail "template rm: $(cat trm.err)"
[ "$(sql "SELECT state FROM vms WHERE name = 'second'")" = ready ] || fail "the clone is not ready"
ok vmc rm second -q
ok vmc template rm t -q
fsck_clean
check_all_disks
exit 0
