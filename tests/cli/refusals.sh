#!/bin/bash
# refusals: refusals speak of catalog objects and name the next command
# (issue 13, point 7). While qemu-io holds VM web-3's disk open for writing
# (a running VM holds the same lock), snapshot create/rm, flatten and rm
# say "VM 'web-3' is running (pid N holds its disk ...)" with exit 5
# (busy), never "failed to get ... lock". `template rm golden` with 7
# dependents names the first five, their number, and the commands that
# help (deps, flatten, rm, --flatten-dependents), with exit 4 (conflict,
# -ENOTEMPTY: the exit status no longer depends on the message's words);
# snapshot rm and rm of a VM whose snapshot has clones likewise.
. "$(dirname "$0")/../catalog/cat-lib.sh"

mk_template t.qcow2
ok vmc template import golden t.qcow2 -q
ok vmc clone golden --name 'web-%d' --count 6 -q
ok vmc snapshot create web-1 s -q
ok vmc clone web-1@s --name child -q

# has dependents: exit 4, named, with the next commands
expect_rc 4 vmc template rm golden
grep -q "template 'golden' has 8 dependents: vm 'child', vm 'web-1', vm 'web-2', vm 'web-3', vm 'web-4' and 3 more" "$T/vmc.err" ||
    fail "dependents not named: $(cat "$T/vmc.err")"
grep -q "'vm-clone deps golden'" "$T/vmc.err" || fail "no deps hint: $(cat "$T/vmc.err")"
grep -q "'vm-clone flatten child'" "$T/vmc.err" || fail "no flatten hint: $(cat "$T/vmc.err")"
grep -q "'vm-clone rm child'" "$T/vmc.err" || fail "no rm hint: $(cat "$T/vmc.err")"
grep -q "'vm-clone template rm golden --flatten-dependents'" "$T/vmc.err" ||
    fail "no --flatten-dependents hint: $(cat "$T/vmc.err")"
vmc template rm golden --json > tr.json && fail "template rm --json succeeded"
[ "$(jget tr.json 'd["error"]["code"]')" = conflict ] || fail "json code: $(cat tr.json)"
expect_rc 4 vmc snapshot rm web-1@s
grep -q "snapshot 'web-1@s' has 1 dependent: vm 'child'" "$T/vmc.err" ||
    fail "snapshot rm: $(cat "$T/vmc.err")"
expect_rc 4 vmc rm web-1
grep -q "'vm-clone flatten child'" "$T/vmc.err" || fail "rm web-1: $(cat "$T/vmc.err")"

# running: qemu-io holds web-3's disk open for writing
disk=$(vmc info web-3 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
mkfifo "$T/ctl"
qemu-io -f qcow2 "$disk" < "$T/ctl" > qio.out 2>&1 &
qio=$!
exec 9> "$T/ctl"
cleanup_fn "exec 9>&-; kill $qio 2>/dev/null"
echo 'write -P 0x77 0 64k' >&9
for _ in $(seq 1 200); do
    grep -q 'wrote' qio.out && break
    sleep 0.05
done
for cmd in "snapshot create web-3 s2" "flatten web-3" "consolidate web-3" "rm web-3" \
           "clone web-3 --full --name copy3"; do
    # shellcheck disable=SC2086
    expect_rc 5 vmc $cmd
    grep -q "VM 'web-3' is running (pid $qio holds its disk '.*' open for writing)" "$T/vmc.err" ||
        fail "$cmd: not in catalog terms: $(cat "$T/vmc.err")"
    ! grep -q "failed to get" "$T/vmc.err" || fail "$cmd: a lock failure: $(cat "$T/vmc.err")"
done
[ "$(sql "SELECT count(*) FROM snapshots WHERE name = 's2'")" = 0 ] || fail "snapshot made"
exec 9>&-
wait "$qio" || true
ok vmc snapshot create web-3 s2 -q
ok vmc rm web-3 -q
exit 0
