#!/bin/bash
# in-use: a copy of a VM's live disks is taken under the shared lock QEMU
# uses, or refused (issue 9 finding 3). While another process has the VM's
# disk open for writing (qemu-io here; a running VM or a writable
# `vm-clone serve` hold the same lock), `clone VM --full` and `template
# create --from-vm VM` refuse with "is in use" and leave nothing behind;
# copies of a snapshot (frozen layers) still work; once the writer is gone
# both copies succeed.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import t t.qcow2 -q
ok vmc clone t --name v -q
ok vmc snapshot create v s -q
disk=$(vmc info v --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
[ -f "$disk" ] || fail "no disk for v"

# a writer that holds the disk open (and its lock) until we close its stdin
mkfifo "$T/ctl"
qemu-io -f qcow2 "$disk" < "$T/ctl" > qio.out 2>&1 &
qio=$!
exec 9> "$T/ctl"
cleanup_fn "exec 9>&-; kill $qio"
echo 'write -P 0x77 0 64k' >&9
for _ in $(seq 1 200); do
    grep -q 'wrote' qio.out && break
    sleep 0.05
done
grep -q 'wrote' qio.out || fail "qemu-io did not write: $(cat qio.out)"

refused() {     # refused NAME CMD...: non-zero, "in use", nothing left
    local what=$1 rc=0
    shift
    vmc "$@" > out 2> err || rc=$?
    [ "$rc" != 0 ] || fail "$what succeeded while the VM's disk is open for writing"
    grep -Eq "VM 'v' is (running|in use)" err || fail "$what: no clean refusal: $(cat err)"
}
refused "clone --full" clone v --full --name c
refused "template create --from-vm" template create tv --from-vm v
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'c'")" = 0 ] || fail "a VM row was left"
[ "$(sql "SELECT count(*) FROM templates WHERE name = 'tv'")" = 0 ] || fail "a template row was left"
# frozen layers are not being written: their copies are fine
ok vmc clone v --snapshot s --full --name cs -q
ok vmc template create ts --from-vm v --snapshot s -q

exec 9>&-
wait "$qio" || true
ok vmc clone v --full --name c -q
ok vmc template create tv --from-vm v -q
# the copies hold what the writer wrote
p=$(vmc info c --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
qemu-io -f qcow2 -r -U -c 'read -P 0x77 0 64k' "$p" | grep -q 'read 65536' ||
    fail "the full clone misses the writer's data"
fsck_clean
check_all_disks
exit 0
