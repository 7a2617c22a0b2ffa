#!/bin/bash
# boot: a real Linux guest boots from linked clones (issue 5, "Boot a
# real guest" 1-3). The guest (kernel + busybox initramfs) is built from
# Debian packages by guest-lib.sh and cached in $BOOT_CACHE (the build
# dir); the disk is an ext4 image made with mke2fs -d: the template
# (qcow2). The test skips (77) when the packages cannot be fetched.
#  1. boot a linked clone through vm-clone serve (NBD, unix socket);
#  2. boot a linked clone opened by QEMU directly as qcow2;
#  3. boot ten linked clones of one template at once from one server.
# Afterwards every clone holds its own marker (and no other), the
# template's bytes are unchanged, qemu-img check and vm-clone img check
# are clean.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
. "$TESTS_DIR/nbd/guest-lib.sh"

# the template: an ext4 file system holding hello.txt
mkdir -p rootfs
echo "hello from the template" > rootfs/hello.txt
head -c 3M /dev/urandom > rootfs/blob.bin
mke2fs -q -t ext4 -d rootfs -F tmpl.raw 32M || fail "mke2fs -d"
qemu-img convert -f raw -O qcow2 tmpl.raw template.qcow2 || fail "template"
tsum=$(sha template.qcow2)

# boot_guest ID DRIVE-OPTS...: boot, wait for BOOT-OK-ID (timeout 120 s)
# (no_timer_check: a starved TCG vCPU - ten guests on a loaded host - makes
# the kernel's IO-APIC timer check panic)
boot_guest() {
    local id=$1 rc=0
    shift
    timeout 120 qemu-system-x86_64 -accel tcg -m 192 -nographic -no-reboot \
        -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1 no_timer_check vmcid=$id" "$@" \
        > "guest-$id.log" 2>&1 < /dev/null || rc=$?
    grep -q "BOOT-OK-$id" "guest-$id.log" ||
        fail "guest $id did not boot (rc $rc): $(tail -5 "guest-$id.log")"
    grep -q "GUEST-READ: hello from the template" "guest-$id.log" ||
        fail "guest $id did not read the template's file"
}

# has_marker IMG ID: the clone's file system holds exactly marker-ID
check_clone() {
    local img=$1 id=$2 list
    qemu_check "$img"
    ok vmc img check "$img"
    qemu-img convert -f qcow2 -O raw "$img" "$img.raw" || fail "convert $img"
    [ "$(debugfs -R "cat /marker-$id.txt" "$img.raw" 2>/dev/null)" = "marker of guest $id" ] ||
        fail "$img does not hold marker-$id"
    list=$(debugfs -R 'ls -l /' "$img.raw" 2>/dev/null | grep -o 'marker-[0-9a-z]*\.txt' | tr '\n' ' ')
    [ "$list" = "marker-$id.txt " ] || fail "$img holds markers: $list"
    rm -f "$img.raw"
}

start=$(date +%s)
# ---- 1. through our NBD server
ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 c1.qcow2
serve s c1.qcow2
boot_guest 1 -drive "file=$(uri s c1.qcow2),format=raw,if=virtio"
stop_server s
check_clone c1.qcow2 1
note "guest 1 booted through vm-clone serve"

# ---- 2. QEMU opens the clone we created directly
ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 c2.qcow2
boot_guest 2 -drive "file=c2.qcow2,format=qcow2,if=virtio"
check_clone c2.qcow2 2
note "guest 2 booted from the qcow2 file"

# ---- 3. ten clones at once from one server
names=()
for i in $(seq 10 19); do
    ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 m$i.qcow2
    names+=(m$i.qcow2)
done
serve many "${names[@]}"
pids=()
for i in $(seq 10 19); do
    boot_guest $i -drive "file=$(uri many m$i.qcow2),format=raw,if=virtio" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "a guest of the ten failed"
done
stop_server many
for i in $(seq 10 19); do
    check_clone m$i.qcow2 $i
done
note "ten guests booted at once from one server"

[ "$(sha template.qcow2)" = "$tsum" ] || fail "the template changed"
note "boot tests took $(( $(date +%s) - start )) s"
