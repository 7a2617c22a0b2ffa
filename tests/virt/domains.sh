#!/bin/bash
# domains: libvirt domains of catalogued VMs against a real private
# libvirtd (tests/helpers/libvirtd.sh), through libvirt's C API (issue 14):
#  - clone --define defines the domain (the VM's name and UUID, the catalog
#    remembers URI and UUID); its XML says type='qemu' without working KVM
#    and validates (virt-xml-validate); with --hostname, it has the seed
#    CD-ROM; vm define redefines, vm undefine removes it;
#  - clone --define on a connection that fails leaves no VM; a crash after
#    the define and before the clone's commit leaves no VM and no domain
#    once the next command has recovered;
#  - rm refuses (exit 5, naming the domain) while the domain runs and
#    keeps the disks; after virsh destroy it removes VM and domain;
#    rm --force stops a running domain first;
#  - fsck reports a VM whose domain vanished and a domain on our disks
#    that is not ours.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/helpers/libvirtd.sh"
requires virt-xml-validate --version
requires qemu-system-x86_64 --version

libvirtd_start
export VMCLONE_HOME=$T/home
export VMCLONE_KVM_DEVICE=$T/no-kvm      # the same answer on any host
vmc init -q || fail "init"
qemu-img create -q -f qcow2 a.qcow2 4M || fail "create a"
ok vmc template import base a.qcow2 --cpus 1 --memory 64 --nics 1 -q

# ---- clone --define, vm define / undefine
ok vmc clone base --name vm1 --define --connect "$LV_URI" -q
uuid=$(vmc info vm1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
[ "$(lv_virsh domuuid vm1)" = "$uuid" ] || fail "domain uuid $(lv_virsh domuuid vm1) is not the VM's $uuid"
lv_virsh dumpxml vm1 > vm1.xml || fail "dumpxml"
grep -q "<domain type='qemu'" vm1.xml || fail "defined as $(head -1 vm1.xml)"
grep -q "<backingStore type='file'" vm1.xml || fail "no backing chain in the defined domain"
virt-xml-validate vm1.xml domain > /dev/null || fail "the defined domain does not validate"
# with a cloud-init seed, the defined domain has its CD-ROM
ok vmc clone base --name vmseed --define --connect "$LV_URI" --hostname seedhost -q
lv_virsh dumpxml vmseed > vmseed.xml || fail "dumpxml vmseed"
grep -q "device='cdrom'" vmseed.xml || fail "clone --define --hostname: no seed CD-ROM in the domain"
virt-xml-validate vmseed.xml domain > /dev/null || fail "the seeded domain does not validate"
ok vmc rm vmseed -q
vmc vm xml vm1 > ours.xml && virt-xml-validate ours.xml domain > /dev/null || fail "vm xml does not validate"
ok vmc vm define vm1 --connect "$LV_URI" --network none -q
lv_virsh dumpxml vm1 | grep -q "<interface" && fail "redefine with --network none kept the NIC"
ok vmc vm undefine vm1 -q
lv_virsh dominfo vm1 > /dev/null 2>&1 && fail "vm undefine left the domain"
expect_rc 3 vmc vm undefine vm1
ok vmc vm define vm1 --connect "$LV_URI" -q
lv_virsh dominfo vm1 > /dev/null || fail "vm define did not define"

# ---- all or nothing
expect_fail vmc clone base --name bad --define --connect "qemu:///system?socket=$T/nosuch"
err_matches "connect"
vmc info bad > /dev/null 2>&1 && fail "a failed --define left VM 'bad'"
rc=0
VMCLONE_CRASH_AT=clone.before-commit "$VMCLONE" clone base --name crashed --define \
    --connect "$LV_URI" -q 2> crash.err || rc=$?
[ "$rc" = 99 ] || fail "the crash point did not fire ($rc): $(cat crash.err)"
lv_virsh dominfo crashed > /dev/null 2>&1 || fail "the domain was not defined before the crash"
ok vmc list -q > /dev/null                 # recovers the dead clone
vmc info crashed > /dev/null 2>&1 && fail "the crashed clone's VM survived"
lv_virsh dominfo crashed > /dev/null 2>&1 && fail "recovery left the crashed clone's domain"

# ---- rm while the domain runs
disk=$(vmc info vm1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
lv_virsh start vm1 > /dev/null || fail "virsh start: $(tail -3 "$LV/log/qemu/vm1.log")"
expect_rc 5 vmc rm vm1
err_matches "domain 'vm1'"
[ -f "$disk" ] || fail "a refused rm removed the disk"
lv_virsh destroy vm1 > /dev/null || fail "virsh destroy"
ok vmc rm vm1 -q
lv_virsh dominfo vm1 > /dev/null 2>&1 && fail "rm left the domain"
[ -f "$disk" ] && fail "rm left the disk"
ok vmc clone base --name vm2 --define --connect "$LV_URI" -q
lv_virsh start vm2 > /dev/null || fail "virsh start vm2"
ok vmc rm vm2 --force -q
lv_virsh dominfo vm2 > /dev/null 2>&1 && fail "rm --force left the domain"

# ---- fsck
ok vmc clone base --name vm3 --define --connect "$LV_URI" -q
ok vmc clone base --name vm4 --define --connect "$LV_URI" -q
ok vmc fsck -q
lv_virsh undefine vm3 > /dev/null || fail "virsh undefine vm3"
lv_virsh dumpxml vm4 | sed -e 's|<name>vm4</name>|<name>intruder</name>|' -e '/<uuid>/d' > intruder.xml
lv_virsh define intruder.xml > /dev/null || fail "define the intruder"
rc=0
vmc fsck > fsck.out 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "fsck found nothing: $(cat fsck.out)"
grep -q "vm3.*gone" fsck.out || fail "fsck did not report vm3's vanished domain: $(cat fsck.out)"
grep -q "intruder.*not one of its VMs" fsck.out || fail "fsck did not report the intruder: $(cat fsck.out)"
grep -q "vm4" fsck.out && fail "fsck reported vm4, whose domain is fine: $(cat fsck.out)"
lv_virsh undefine intruder > /dev/null
ok vmc rm vm3 vm4 -q
