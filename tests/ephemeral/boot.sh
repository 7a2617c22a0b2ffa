#!/bin/bash
# boot (suite boot): ephemeral runs and cloud-init seeds in a real guest
# (issue 14). The guest (tests/nbd/guest-lib.sh) boots from a clone of a
# sealed template:
#  - clone --count 2 --hostname 'node-%d' gives each VM its own NoCloud
#    seed; each guest mounts its CD-ROM (virtio-scsi) and prints its own
#    local-hostname on the serial console;
#  - start --ephemeral: the guest writes its marker, and after QEMU exits
#    the VM's disk is byte-identical to before and no overlay is left; the
#    same boot without --ephemeral keeps the marker (the check can fail);
#    after kill -9 of QEMU in a running ephemeral guest, the same.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
. "$TESTS_DIR/nbd/guest-lib.sh"

export VMCLONE_HOME=$T/home
export TMPDIR=$T/tmp
unset XDG_RUNTIME_DIR
mkdir -p "$TMPDIR"
vmc init -q || fail "vm-clone init"

mkdir -p rootfs
echo "hello from the template" > rootfs/hello.txt
mke2fs -q -t ext4 -d rootfs -F root.raw 32M || fail "mke2fs -d"
ok vmc template import tiny root.raw --memory 192 --cpus 1 -q
ok vmc clone tiny --name 'node-%d' --count 2 --hostname 'node-%d' -q

# boot VM ID [START ARGS...]: boot VM under TCG, wait for BOOT-OK-ID
boot() {
    local vm=$1 id=$2 rc=0
    shift 2
    timeout 180 "$VMCLONE" start "$vm" "$@" --direct --serial "$T/guest-$id.log" \
        --kernel "$KERNEL" --initrd "$INITRD" \
        --append "console=ttyS0 quiet panic=-1 no_timer_check vmcseed vmcid=$id" -- -no-reboot \
        < /dev/null > "start-$id.out" 2> "start-$id.err" || rc=$?
    [ "$rc" = 0 ] || fail "start $vm $* exited $rc: $(tail -3 "start-$id.err") $(tail -3 "guest-$id.log")"
    grep -q "BOOT-OK-$id" "guest-$id.log" || fail "guest $id did not boot: $(tail -5 "guest-$id.log")"
}
disk_of() {
    vmc info "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])'
}

start=$(date +%s)
# the seeds: each guest its own hostname
boot node-1 h1 --ephemeral
boot node-2 h2
grep -q "GUEST-HOSTNAME: node-1" guest-h1.log || fail "node-1: $(grep GUEST guest-h1.log)"
grep -q "GUEST-HOSTNAME: node-2" guest-h2.log || fail "node-2: $(grep GUEST guest-h2.log)"
note "two seeded guests booted ($(( $(date +%s) - start )) s)"

# ephemeral: node-1 booted --ephemeral above; its disk has no marker and
# nothing is left in the store's scratch directory
raw_of "$(disk_of node-1)" n1.raw
debugfs -R 'ls -l /' n1.raw 2>/dev/null | grep -q marker-h1 &&
    fail "an ephemeral run left its marker on the VM's disk"
[ -z "$(ls -A "$VMCLONE_HOME/run/scratch" 2>/dev/null)" ] ||
    fail "an ephemeral run left $(ls -A "$VMCLONE_HOME/run/scratch")"
# and the persistent boot kept its marker (so the check above can fail)
raw_of "$(disk_of node-2)" n2.raw
[ "$(debugfs -R 'cat /marker-h2.txt' n2.raw 2>/dev/null)" = "marker of guest h2" ] ||
    fail "a persistent run lost its marker"
sum=$(sha "$(disk_of node-2)")
boot node-2 h3 --ephemeral
[ "$(sha "$(disk_of node-2)")" = "$sum" ] || fail "an ephemeral run changed node-2's disk"
grep -q "GUEST-READ: hello from the template" guest-h3.log || fail "the ephemeral guest did not read its disk"

# kill -9 of QEMU during an ephemeral run (the guest has written and
# synced its marker, then waits): the disk is as it was, and the overlay
# is gone (QEMU held its lock; vm-clone start removes it when QEMU dies)
"$VMCLONE" start node-2 --ephemeral --direct --serial "$T/guest-k.log" \
    --kernel "$KERNEL" --initrd "$INITRD" \
    --append "console=ttyS0 quiet panic=-1 no_timer_check vmchold vmcid=k" -- -no-reboot \
    < /dev/null > start-k.out 2> start-k.err &
spid=$!
for _ in $(seq 1 1800); do
    grep -q BOOT-OK-k guest-k.log 2>/dev/null && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
done
grep -q BOOT-OK-k guest-k.log || fail "the held guest did not boot: $(tail -3 guest-k.log)"
qpid=$(pgrep -P "$spid" -f qemu-system) || fail "no QEMU under vm-clone start"
kill -9 "$qpid"
rc=0; wait "$spid" || rc=$?
[ "$rc" = 137 ] || fail "start exited $rc after QEMU's kill -9, expected 137"
[ "$(sha "$(disk_of node-2)")" = "$sum" ] || fail "a killed ephemeral run changed node-2's disk"
[ -z "$(ls -A "$VMCLONE_HOME/run/scratch" 2>/dev/null)" ] ||
    fail "a killed ephemeral run left $(ls -A "$VMCLONE_HOME/run/scratch")"
ok vmc fsck -q > /dev/null
note "ephemeral and seed boots took $(( $(date +%s) - start )) s"
