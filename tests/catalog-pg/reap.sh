#!/bin/bash
# reap (PostgreSQL only): host a's operations are killed (kill -9 while
# paused at the journal's crash points); host b's commands leave them
# alone (recovery at start finishes only b's rows), b's fsck names host a
# as their owner, and b's `fsck --reap` rolls each back (creating) or
# forward (deleting); the catalog and the shared pool's files agree
# afterwards. Host a cannot stage an operation in host c's local pool.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../catalog/cat-lib.sh"
. "$HERE/host-lib.sh"

# kill_at HOST POINT ARGS...: run vm-clone on HOST paused at POINT, kill -9
kill_at() {
    local h=$1 point=$2 pid i
    shift 2
    rm -rf "$T/pause"; mkdir -p "$T/pause"
    VMCLONE_HOME=$T/host-$h VMCLONE_PAUSE_AT=$point VMCLONE_PAUSE_DIR=$T/pause \
        "$VMCLONE" "$@" > /dev/null 2> kill.err &
    pid=$!
    for i in $(seq 1 2000); do
        [ -e "$T/pause/paused" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    [ -e "$T/pause/paused" ] || fail "$point not reached: $(cat kill.err)"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
}

# reap_by_b WHAT: a's row is left by b's commands, named by b's fsck, reaped
reap_by_b() {
    local rc=0
    on b list -q > /dev/null || fail "$1: b's next command failed"
    [ "$(hsql "SELECT count(*) FROM journal WHERE state = 'running' AND host_id = 'a'")" = 1 ] ||
        fail "$1: a's running row is not there for the reap: $(hsql "SELECT id, op, state, host_id FROM journal WHERE state = 'running'")"
    on b fsck > fsck.txt 2>&1 || rc=$?
    [ "$rc" = 6 ] && grep -q "of host 'a'.*fsck --reap" fsck.txt ||
        fail "$1: fsck without --reap (exit $rc): $(cat fsck.txt)"
    on b fsck --reap --json > reap.json || fail "$1: fsck --reap: $(cat reap.json)"
    [ "$(jget reap.json 'd["reaped"]')" = 1 ] || fail "$1: not reaped: $(cat reap.json)"
    jget reap.json '[f["detail"] for f in d["findings"] if f["action"] == "reaped"][0]' |
        grep -q "host 'a'" || fail "$1: the reap does not name host a: $(cat reap.json)"
    [ "$(hsql "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] || fail "$1: rows left running"
    [ "$(hsql "SELECT count(*) FROM vms WHERE state != 'ready'")" = 0 ] || fail "$1: VMs in transit"
    catalog_agrees
}

on a clone t --pool shared --name base -q || fail "first clone"
on c clone t --pool shared --name del -q || fail "clone to delete"

kill_at a clone.before-commit clone t --pool shared --name 'k-%d' --count 3
reap_by_b "linked clone group"
[ "$(hsql "SELECT count(*) FROM vms WHERE name LIKE 'k-%'")" = 0 ] || fail "clone not rolled back"
no_files_of k-1

kill_at a clone.full-before-rename clone base --full --pool shared --name kf
reap_by_b "full clone"
no_files_of kf

kill_at a delete.after-mark rm del
reap_by_b "rm (roll forward)"
[ "$(hsql "SELECT count(*) FROM vms WHERE name = 'del'")" = 0 ] || fail "rm not rolled forward"
no_files_of del

kill_at a snapshot.before-commit snapshot create base s1
reap_by_b "snapshot"
[ "$(stat -c %a "$(ls "$T"/shared/base-disk*.qcow2 | head -1)")" = 644 ] ||
    fail "the snapshot's rollback left base read-only"

# host a never stages rows in host c's local pool (so no dead row of a
# ever needs c's files)
mkdir -p "$T/loc-c"
on c pool add loc-c "$T/loc-c" --kind primary -q || fail "pool add loc-c"
rc=0
on a clone base --full --pool loc-c --name kc -q 2> kc.err || rc=$?
[ "$rc" = 1 ] && grep -q "local to host 'c'" kc.err || fail "a cloned into c's pool: $rc $(cat kc.err)"
[ "$(hsql "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] ||
    fail "a left rows in c's local pool"
on a clone base --full --pool shared --name ok-a -q || fail "a's clone after the kills"
catalog_agrees
exit 0
