#!/bin/bash
# stop (suite instant, plain and ASan): "vm-clone stop VM" with a real
# QEMU under TCG (no guest kernel: the BIOS idles):
#  - usage: no VM, --timeout 0: 2; no such VM: 3; a VM that does not run:
#    0, "not running" (--json: was_running false);
#  - a detached start: stop returns 0 once the start process, QEMU and
#    its NBD server are gone, the VM is "ready" again (info says
#    "running" while it runs), and "stop && rm" removes it, run file and
#    all;
#  - a foreground start in another shell: it exits, stop says its pid;
#  - two ephemeral runs of one VM at once: one stop ends both (two pids
#    in --json) and leaves no overlay in STORE/run/scratch;
#  - a start that does not end in time (stopped with SIGSTOP): 5 after
#    --timeout, "still runs", and the VM still runs; it ends once it may;
#  - a stop while the start is still before QEMU's spawn (held there by
#    strace): QEMU gets the SIGTERM at its spawn, stop returns;
#  - a start killed with -9: its lock went with it, stop finds nothing;
#  - a VM whose disk another program holds for writing: 5, "not under
#    'vm-clone start'", and that program still runs.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/instant/instant-lib.sh"

inst_store 64
H=$VMCLONE_HOME

# alive PID: PID runs (a zombie does not: the start's waiter has
# returned, so nobody here reaps the start)
alive() {
    local st
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$1"/status 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ]
}
# gone PID...: wait (10 s at most) until each PID is gone
gone() {
    local p i
    for p in "$@"; do
        for i in $(seq 1 100); do
            alive "$p" || continue 2
            sleep 0.1
        done
        fail "process $p ($(cat /proc/"$p"/comm 2>/dev/null)) is still there"
    done
}
# detached NAME VM ARGS...: "start VM --detach ARGS", its pid in $SPID
detached() {
    local n=$1
    shift
    vmc start "$@" --accel tcg --detach > "$n.out" 2> "$n.err" ||
        fail "start $*: $(cat "$n.err")"
    SPID=$(sed -n "s/.*'kill \([0-9]*\)'.*/\1/p" "$n.out")
    [ -n "$SPID" ] || fail "start $*: no pid in '$(cat "$n.out")'"
    cleanup_fn "kill $SPID 2> /dev/null"
}
state_of() {
    "$VMCLONE" info "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}

# ---- usage, not found, not running
expect_rc 2 vmc stop
expect_rc 2 vmc stop tv --timeout 0
err_matches "timeout takes a duration"
expect_rc 3 vmc stop nosuch
ok vmc stop tv > none.out
err_matches "VM 'tv' is not running"
vmc stop tv --json > none.json || fail "stop --json of a VM that does not run"
python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d == {"vm": "tv", "was_running": False, "pids": []}, d' none.json ||
    fail "stop --json: $(cat none.json)"

# ---- a detached start, through NBD (its server is a second child)
detached d1 tv --nbd
kids=$(children "$SPID")
[ "$(echo "$kids" | wc -w)" -ge 2 ] || fail "start --nbd: expected QEMU and a server under $SPID: '$kids'"
[ -e "$H/run/vm/tv.run" ] || fail "start made no run file"
[ "$(state_of tv)" = running ] || fail "info of a running VM says '$(state_of tv)'"
ok vmc stop tv > d1.stop
grep -q "VM 'tv' stopped (its start, pid $SPID, has ended)" d1.stop || fail "stop said '$(cat d1.stop)'"
# stop returned once the start ended: nothing of it is left at that point
# (its children are reaped by it before it ends)
alive "$SPID" && fail "stop returned while the start ($SPID) still runs"
for k in $kids; do
    alive "$k" && fail "stop returned while the start's child $k ($(cat /proc/"$k"/comm)) runs"
done
[ "$(state_of tv)" = ready ] || fail "after stop, info says '$(state_of tv)'"
ok vmc clone tiny --name gone-soon -q
detached d2 gone-soon --direct
ok vmc stop gone-soon -q
ok vmc rm gone-soon -q
[ ! -e "$H/run/vm/gone-soon.run" ] || fail "rm left the run file of gone-soon"

# ---- a foreground start
start_bg fg tv --direct
fg=$BG_PID
for _ in $(seq 1 100); do
    [ "$(state_of tv)" = running ] && break
    sleep 0.1
done
vmc stop tv --json > fg.json || fail "stop of a foreground start: $(cat vmc.err)"
python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["was_running"] and d["pids"] == [int(sys.argv[2])], d' fg.json "$fg" ||
    fail "stop --json of the foreground start $fg: $(cat fg.json)"
alive "$fg" && fail "the foreground start $fg still runs after stop"
wait "$fg" 2>/dev/null || true

# ---- two ephemeral runs of one VM: one stop ends both
detached e1 tv --direct --ephemeral
e1=$SPID
detached e2 tv --direct --ephemeral
e2=$SPID
[ -n "$(ls -A "$H/run/scratch")" ] || fail "the ephemeral runs made no overlay in run/scratch"
vmc stop tv --json > e.json || fail "stop of two ephemeral runs: $(cat vmc.err)"
python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert sorted(d["pids"]) == sorted(map(int, sys.argv[2:])), d' e.json "$e1" "$e2" ||
    fail "stop --json of runs $e1 and $e2: $(cat e.json)"
alive "$e1" && fail "ephemeral run $e1 still there"
alive "$e2" && fail "ephemeral run $e2 still there"
[ -z "$(ls -A "$H/run/scratch")" ] || fail "stopped ephemeral runs left $(ls -A "$H/run/scratch")"

# ---- a start that does not end in time
detached t1 tv --direct
kill -STOP "$SPID"
expect_rc 5 vmc stop tv --timeout 1
err_matches "still runs 1 s after SIGTERM \(its start, pid $SPID\)"
kill -CONT "$SPID"      # the SIGTERM it got is delivered now
gone "$SPID"
ok vmc stop tv -q       # nothing left to stop

# ---- a stop that comes before QEMU is spawned (strace holds the start in
# its fork for 3 s, from its lock on): passed on to QEMU at its spawn
# (without that, QEMU would run on and stop would time out)
requires strace -V
strace -o "$T/fork.trace" -e trace=clone,clone3 -e inject=clone,clone3:delay_enter=3000000 \
    "$VMCLONE" start tv --direct --accel tcg --serial "$T/early.log" \
    < /dev/null > early.out 2> early.err &
early=$!
# run_locked PID: PID holds a record lock on tv's run file (not just one
# on the catalog, which SQLite locks the same way)
ino=$(stat -c %i "$H/run/vm/tv.run") || fail "no run file of tv"
run_locked() {
    grep -qE "POSIX +ADVISORY +WRITE +$1 +[0-9a-f]+:[0-9a-f]+:$ino " /proc/locks
}
for _ in $(seq 1 300); do
    locker=$(pgrep -P "$early" -f "start tv" | head -n 1)
    [ -n "$locker" ] && run_locked "$locker" && break
    sleep 0.1
done
# strace outlives a SIGTERM in its delay, and keeps its tracee: -9 both
# (QEMU follows the start: parent death)
cleanup_fn "kill -9 $early $locker 2> /dev/null"
run_locked "$locker" || fail "the start under strace took no lock on its run file: $(cat early.err)"
vmc stop tv --timeout 20 --json > early.json || fail "stop of a start before its QEMU: $(cat vmc.err)"
python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["pids"] == [int(sys.argv[2])], d' early.json "$locker" ||
    fail "stop --json of the start $locker: $(cat early.json)"
grep -q "^--- SIGTERM" "$T/fork.trace" || fail "the SIGTERM did not come during the delayed fork: $(cat "$T/fork.trace")"
wait "$early" 2>/dev/null || true

# ---- a start killed with -9: QEMU follows it (parent death), no lock
detached k1 tv --direct
kids=$(children "$SPID")
kill -9 "$SPID"
gone "$SPID" $kids
ok vmc stop tv
err_matches "not running"

# ---- a disk held by another program
disk=$(sqlite3 "$H/catalog.db" "SELECT p.path || '/' || v.file FROM volumes v JOIN pools p ON p.id = v.pool_id
            JOIN vms ON vms.id = v.vm_id WHERE vms.name = 'tv' AND v.top = 1")
[ -e "$disk" ] || fail "no disk for tv: '$disk'"
hold_open "$disk"
expect_rc 5 vmc stop tv
err_matches "not under 'vm-clone start'"
alive "$HOLD_PID" || fail "stop ended the program that held the disk"
hold_release
