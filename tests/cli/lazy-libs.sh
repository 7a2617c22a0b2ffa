#!/bin/bash
# lazy-libs: Ceph's client libraries and libvirt are not linked into
# vm-clone (src/ops/rbd-dl.c, src/virt/virt-dl.c) but loaded at their
# first use, so a command that needs neither never loads them:
#  - the binary's NEEDED entries name none of them;
#  - with broken stand-ins first in the library path, a store is made, a
#    template imported, a VM cloned and listed (they are never loaded);
#  - a command that needs them fails cleanly (exit 1..127, a message that
#    says they cannot be loaded), never a crash or a dynamic-link error.
. "$(dirname "$0")/../lib.sh"
requires readelf --version
requires qemu-img --version

needed=$(readelf -d "$VMCLONE" | awk '/NEEDED/ { print $NF }')
[ -n "$needed" ] || fail "readelf found no NEEDED entry in $VMCLONE"
for lib in librbd librados libvirt; do
    echo "$needed" | grep -q "\[$lib\." && fail "vm-clone is linked with $lib: $needed"
done

# broken stand-ins: dlopen() of any of them fails
mkdir broken
for so in librbd.so.1 librados.so.2 libvirt.so.0; do
    echo "not a library" > "broken/$so"
done
export LD_LIBRARY_PATH=$T/broken${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VMCLONE_HOME=$T/home

qemu-img create -q -f qcow2 t.qcow2 16M
ok vmc init -q
ok vmc template import t t.qcow2 -q
ok vmc clone t --name vm1 -q
vmc list | grep -q "^vm1 " || fail "list: $(vmc list)"

expect_fail vmc pool add p --type rbd --rbd-pool x -q
err_matches "client libraries cannot be loaded.*librados"
expect_fail vmc vm define vm1
err_matches "libvirt is not installed or cannot be loaded"
vmc list | grep -q "^vm1 " || fail "list after the failures: $(vmc list)"
note "ok"
