#!/bin/bash
# boot-start: `vm-clone start` boots a catalogued VM (issue 5, "Boot a
# real guest" 4). The guest's ext4 root disk is imported with `template
# import` (a sealed template), cloned with `clone --linked`, and the one
# VM is booted twice: `start VM --nbd` (disks through a private vm-clone
# serve) and then `start VM --direct` (QEMU opens the qcow2 files). Each boot
# reads the template's hello.txt and writes its marker. Afterwards the
# clone holds both markers (so the NBD boot's writes were flushed into a
# valid qcow2 file), the template and its pool copy are unchanged and
# still verify, qemu-img check and vm-clone img check are clean, and no
# socket directory is left. Guest: guest-lib.sh (cached in $BOOT_CACHE).
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
head -c 1M /dev/urandom > rootfs/blob.bin
mke2fs -q -t ext4 -d rootfs -F root.raw 32M || fail "mke2fs -d"
ok vmc template import tiny root.raw --memory 192 --cpus 1 --nics 1 -q
ok vmc clone tiny --linked --name vm1 -q
vmc info vm1 --json > vm1.json || fail "info vm1"
disk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["path"])' vm1.json)
copy=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["chain"][1]["path"])' vm1.json)
tmpl=$(ls "$VMCLONE_HOME"/secondary/*.qcow2)
tsum=$(sha "$tmpl")
csum=$(sha "$copy")

# start_guest ID [START ARGS...]: boot vm1, wait for BOOT-OK-ID (120 s)
start_guest() {
    local id=$1 rc=0
    shift
    timeout 120 "$VMCLONE" start vm1 "$@" --serial "$T/guest-$id.log" \
        --kernel "$KERNEL" --initrd "$INITRD" \
        --append "console=ttyS0 quiet panic=-1 no_timer_check vmcid=$id" -- -no-reboot \
        < /dev/null > "start-$id.out" 2> "start-$id.err" || rc=$?
    if grep -qE 'Sanitizer|runtime error:' "start-$id.err"; then
        cat "start-$id.err" >&2
        fail "sanitizer report from vm-clone start $*"
    fi
    [ "$rc" = 0 ] || fail "vm-clone start vm1 $* exited $rc: $(tail -3 "start-$id.err") $(tail -3 "guest-$id.log")"
    grep -q "BOOT-OK-$id" "guest-$id.log" ||
        fail "guest $id did not boot: $(tail -5 "guest-$id.log")"
    grep -q "GUEST-READ: hello from the template" "guest-$id.log" ||
        fail "guest $id did not read the template's file"
    [ -z "$(ls -A "$TMPDIR")" ] || fail "start left files in \$TMPDIR: $(ls "$TMPDIR")"
}

start=$(date +%s)
start_guest n --nbd
grep -q "served on nbd+unix:///vm1/disk0?socket=$TMPDIR/vm-clone-start\." start-n.err ||
    fail "start --nbd did not serve the disk: $(cat start-n.err)"
note "vm1 booted with start --nbd ($(( $(date +%s) - start )) s)"
t2=$(date +%s)
start_guest d --direct
note "vm1 booted with start --direct (qcow2 opened by QEMU) ($(( $(date +%s) - t2 )) s)"

qemu_check "$disk"
ok vmc img check "$disk"
raw_of "$disk" vm1.raw
for id in n d; do
    [ "$(debugfs -R "cat /marker-$id.txt" vm1.raw 2>/dev/null)" = "marker of guest $id" ] ||
        fail "the clone does not hold marker-$id"
done
[ "$(sha "$tmpl")" = "$tsum" ] || fail "the template changed"
[ "$(sha "$copy")" = "$csum" ] || fail "the template's pool copy changed"
ok vmc img verify "$tmpl" > /dev/null
ok vmc img verify "$copy" > /dev/null
raw_of "$tmpl" tmpl.raw
debugfs -R 'ls -l /' tmpl.raw 2>/dev/null | grep -q marker && fail "the template holds a marker"
note "start tests took $(( $(date +%s) - start )) s"
