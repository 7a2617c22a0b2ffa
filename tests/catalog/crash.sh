#!/bin/bash
# crash: processes killed in the middle of multi-step operations.
#  1. deterministic crash points (VMCLONE_CRASH_AT) between the steps of
#     import, template copy, clone (linked, full), snapshot, revert,
#     snapshot rm, flatten, relink, consolidate and delete, and engine
#     crashes at the Nth pwrite/sync (VMCLONE_FAULT=OP:N:crash);
#  2. a loop of >= 50 `kill -9` at random moments of a full clone, a
#     linked clone group, a template copy, a flatten.
# After each: the next command recovers (rolls forward or back), fsck
# reports zero inconsistencies, every disk passes qemu-img check, and
# every VM in the catalog reads its template's data.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2 32M
qemu-io -f qcow2 -c 'write -P 0x77 16M 8M' t.qcow2 >/dev/null
ok vmc template import t t.qcow2 -q

after_crash() {   # WHAT
    vmc list --json > /dev/null || fail "$1: the next command failed"
    fsck_clean
    check_all_disks
    [ "$(sql "SELECT count(*) FROM vms WHERE state != 'ready'")" = 0 ] || fail "$1: VM rows left in transit"
    [ "$(sql "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] || fail "$1: journal rows left running"
}

crash_at() {      # POINT CMD...
    local point=$1 rc=0
    shift
    VMCLONE_CRASH_AT=$point "$VMCLONE" "$@" > /dev/null 2> crash.err || rc=$?
    [ "$rc" = 99 ] || fail "crash point $point not reached (exit $rc): $(cat crash.err)"
    after_crash "$point"
}

vm_path() {
    vmc info "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])'
}

# 1. deterministic crash points
crash_at copy.before-seal clone t --name c0
[ "$(sql 'SELECT count(*) FROM template_copies')" = 0 ] || fail "copy not rolled back"
crash_at copy.before-commit clone t --name c0
crash_at clone.before-commit clone t --name 'g-%d' --count 5
[ "$(sql 'SELECT count(*) FROM vms')" = 0 ] || fail "clone group not rolled back"
ok vmc clone t --name base-vm -q
crash_at clone.full-before-rename clone t --full --name f0
crash_at clone.before-commit clone t --full --name f0
crash_at import.before-rename template import t2 t.qcow2
crash_at import.before-commit template import t2 t.qcow2
[ "$(sql "SELECT count(*) FROM templates WHERE name='t2'")" = 0 ] || fail "import not rolled back"
crash_at snapshot.before-commit snapshot create base-vm s
[ "$(stat -c %a "$(vm_path base-vm)")" = 644 ] || fail "snapshot rollback left the disk read-only"
ok vmc snapshot create base-vm s -q
ok vmc snapshot create base-vm s2 -q
crash_at revert.before-commit snapshot revert base-vm s
crash_at snapshot-rm.before-finish snapshot rm base-vm s
crash_at consolidate.before-commit consolidate base-vm
crash_at flatten.before-commit flatten base-vm
[ "$(vmc info base-vm --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["disks"][0]["chain"]))')" = 1 ] ||
    fail "flatten: catalog disagrees with the file"
ok vmc clone t --full --name rl -q
crash_at relink.before-commit relink rl --template t
ok vmc clone t --name del -q
crash_at delete.after-mark rm del
expect_fail vmc info del
qemu-img compare -q -f qcow2 -F qcow2 t.qcow2 "$(vm_path base-vm)" || fail "base-vm content"
qemu-img compare -q -f qcow2 -F qcow2 t.qcow2 "$(vm_path rl)" || fail "rl content"

# engine-level crashes inside the copy and the clone files
for n in 1 2 3 5 8; do
    rc=0
    VMCLONE_FAULT=pwrite:$n:crash "$VMCLONE" clone t --full --name "ef-$n" >/dev/null 2>&1 || rc=$?
    after_crash "full clone, pwrite $n (exit $rc)"
    VMCLONE_FAULT=sync:$n:crash "$VMCLONE" clone t --name "el-$n" >/dev/null 2>&1 || rc=$?
    after_crash "linked clone, sync $n (exit $rc)"
done

# 2. kill -9 at random moments
ITER=${CAT_KILL_ITER:-60}
RANDOM=4242
for i in $(seq 1 "$ITER"); do
    case $((i % 4)) in
    0) args=(clone t --full --name "k-$i") ;;
    1) args=(clone t --name "kg-$i-%d" --count 8) ;;
    2) # the template copy: drop the pool's copy first when nothing uses it
       vmc gc -q >/dev/null || true
       args=(clone t --pool p2 --name "kp-$i") ;;
    3) ok vmc clone t --name "kf-$i" -q
       args=(flatten "kf-$i") ;;
    esac
    if [ "$i" = 1 ]; then
        mkdir -p "$T/p2"; ok vmc pool add p2 "$T/p2" -q
    fi
    "$VMCLONE" "${args[@]}" > /dev/null 2>&1 &
    pid=$!
    sleep "0.0$((RANDOM % 40))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    vmc list > /dev/null || fail "kill $i (${args[*]}): next command failed"
    if [ $((i % 10)) = 0 ] || [ "$i" = "$ITER" ]; then
        after_crash "kill -9 #$i (${args[*]})"
    fi
done
after_crash "final"
for n in $(sql "SELECT name FROM vms"); do
    qemu-img compare -q -U -f qcow2 -F qcow2 t.qcow2 "$(vm_path "$n")" || fail "VM $n does not read the template"
done
note "$(sql "SELECT count(*) FROM vms") VMs survive, $(sql "SELECT count(*) FROM journal WHERE state='rolled-back'") operations rolled back"
