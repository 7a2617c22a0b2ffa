#!/bin/bash
# boot-libvirt: a clone defined in a real private libvirtd boots there
# (issue 14). The guest's ext4 disk is imported as a (sealed) template,
# cloned with `clone --define --connect URI`, redefined with `vm define`
# for a direct kernel boot (the tiny guest of tests/nbd/guest-lib.sh) and
# a serial console file, and started with `virsh start` under TCG
# (type='qemu'). The guest reads the template's file and prints its
# marker on the serial console; `vm-clone rm` refuses while the domain
# runs; once the guest has powered off, the clone holds the guest's
# marker, qemu-img check is clean, and rm removes VM and domain.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/helpers/libvirtd.sh"
. "$TESTS_DIR/nbd/guest-lib.sh"

libvirtd_start
export VMCLONE_HOME=$T/home
vmc init -q || fail "init"
mkdir -p rootfs
echo "hello from the template" > rootfs/hello.txt
mke2fs -q -t ext4 -d rootfs -F root.raw 32M || fail "mke2fs -d"
ok vmc template import tiny root.raw --memory 192 --cpus 1 --nics 1 -q
ok vmc clone tiny --linked --name vm1 --define --connect "$LV_URI" -q
ok vmc vm define vm1 --connect "$LV_URI" --accel tcg --kernel "$KERNEL" \
    --initrd "$INITRD" --serial "$T/serial.log" \
    --append "console=ttyS0 quiet panic=-1 no_timer_check vmcid=lv" -q
lv_virsh dumpxml vm1 | grep -q "<domain type='qemu'" || fail "not a TCG domain"
disk=$(vmc info vm1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')

t0=$(date +%s)
lv_virsh start vm1 > /dev/null || fail "virsh start: $(tail -5 "$LV/log/qemu/vm1.log")"
expect_rc 5 vmc rm vm1
err_matches "libvirt domain 'vm1'"
for i in $(seq 1200); do
    grep -q "BOOT-OK-lv" serial.log 2>/dev/null && break
    sleep 0.1
done
grep -q "BOOT-OK-lv" serial.log || fail "the guest did not boot: $(tail -5 serial.log 2>/dev/null) $(tail -3 "$LV/log/qemu/vm1.log")"
grep -q "GUEST-READ: hello from the template" serial.log || fail "the guest did not read the template's file"
note "booted through libvirt in $(( $(date +%s) - t0 )) s"
for i in $(seq 300); do
    [ "$(lv_virsh domstate vm1)" = "shut off" ] && break
    sleep 0.1
done
[ "$(lv_virsh domstate vm1)" = "shut off" ] || lv_virsh destroy vm1 > /dev/null
qemu_check "$disk"
raw_of "$disk" vm1.raw
[ "$(debugfs -R "cat /marker-lv.txt" vm1.raw 2>/dev/null)" = "marker of guest lv" ] ||
    fail "the clone does not hold the guest's marker"
ok vmc rm vm1 -q
lv_virsh dominfo vm1 > /dev/null 2>&1 && fail "rm left the domain"
[ -e "$disk" ] && fail "rm left the disk"
exit 0
