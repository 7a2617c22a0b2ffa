#!/bin/bash
# lazy-libs: Ceph's client libraries, libvirt and libpq are not linked
# into vm-clone (src/ops/rbd-dl.c, src/virt/virt-dl.c, src/catalog/pq-dl.c
# on src/util/lazy-lib.c) but loaded at their first use, so a command that
# needs none of them never loads them:
#  - the libraries the binary loads at start (ldd) include none of them;
#  - with broken stand-ins first in the library path, a store is made, a
#    template imported, a VM cloned and listed (they are never loaded);
#  - a command that needs them fails cleanly (exit 1..127, a message that
#    says they cannot be loaded), never a crash or a dynamic-link error.
. "$(dirname "$0")/../lib.sh"
requires ldd --version
requires qemu-img --version

needed=$(ldd "$VMCLONE" | awk '{ print $1 }')
echo "$needed" | grep -q "^libc\.so" || fail "ldd did not list $VMCLONE's libraries: $needed"
for lib in librbd librados libvirt libpq; do
    echo "$needed" | grep -q "^$lib\." && fail "vm-clone loads $lib at start: $needed"
done

# broken stand-ins: dlopen() of any of them fails
mkdir broken
for so in librbd.so.1 librados.so.2 libvirt.so.0 libpq.so.5; do
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
VMCLONE_HOME=$T/pg expect_fail vmc init -q --catalog "host=$T/nowhere dbname=x"
err_matches "PostgreSQL's client library cannot be loaded.*libpq"
vmc list | grep -q "^vm1 " || fail "list after the failures: $(vmc list)"
note "ok"
