#!/bin/bash
# linked-clone: copy-on-write semantics of a linked clone.
#  - a fresh clone reads exactly as its base;
#  - partial-cluster writes keep the rest of the cluster from the base;
#  - discard and write-zeroes (with and without -u) read back as zeros,
#    never as base data, and qemu-img map shows zero clusters there
#    (allocated in the top layer, depth 0), not fall-through;
#  - the base file is byte-for-byte unchanged (sha256) and unlocked after;
#  - a clone of a clone (depth 2) and relative names across directories.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

mkdir tmpl vms
qemu-img create -q -f qcow2 tmpl/base.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0xb0 0 16M' tmpl/base.qcow2 >/dev/null
before=$(sha tmpl/base.qcow2)

ok vmc img create -f qcow2 -b ../tmpl/base.qcow2 -F qcow2 vms/c.qcow2
qemu_check vms/c.qcow2
qemu_same vms/c.qcow2 tmpl/base.qcow2 qcow2 qcow2
ok vmc img io -f qcow2 vms/c.qcow2 -c 'read -P 0xb0 0 16M'

# partial-cluster write: the rest of the cluster still reads base data
ok vmc img io -f qcow2 vms/c.qcow2 -c 'write -P 0xc1 66000 1000'
qemu-io -f qcow2 -c 'read -P 0xb0 65536 464' -c 'read -P 0xc1 66000 1000' \
    -c 'read -P 0xb0 67000 64072' vms/c.qcow2 >/dev/null || fail "COW did not keep the base's bytes around a partial write"

# discard, write -z, write -z -u over base data: zeros, never base data
ok vmc img io -f qcow2 vms/c.qcow2 -c 'discard 1M 128k' -c 'write -z 2M 64k' \
    -c 'write -z -u 3M 192k' -c 'write -z 4M 1000' -c 'write -z 5M 300k'
qemu-io -f qcow2 -c 'read -P 0 1M 128k' -c 'read -P 0 2M 64k' -c 'read -P 0 3M 192k' \
    -c 'read -P 0 4M 1000' -c 'read -P 0xb0 4195304 1000' -c 'read -P 0 5M 300k' \
    vms/c.qcow2 >/dev/null || fail "discarded/zeroed ranges of the clone do not read as zeros"
ok vmc img io -f qcow2 vms/c.qcow2 -c 'read -P 0 1M 128k' -c 'read -P 0 3M 192k'
# qemu-img map: those ranges are defined by the top layer as zeros
qemu-img map -f qcow2 --output=json vms/c.qcow2 | map_filter > m.txt
python3 - m.txt <<'PY' || fail "map: zeroed ranges are not zero clusters in the top layer"
import sys
ext = [l.split() for l in open(sys.argv[1])]
def at(off):
    for s, ln, d, p, z, data in ext:
        if int(s) <= off < int(s) + int(ln):
            return int(d), p, z
for off in (1 << 20, 2 << 20, 3 << 20, (3 << 20) + 128 * 1024, 5 << 20):
    d, p, z = at(off)
    assert (d, p, z) == (0, "true", "true"), (off, d, p, z)
PY
qemu_check vms/c.qcow2

# the guest view equals a shadow built by qemu-io on a raw copy
raw_of tmpl/base.qcow2 shadow.raw
qemu-io -f raw -c 'write -P 0xc1 66000 1000' -c 'write -z 1M 128k' -c 'write -z 2M 64k' \
    -c 'write -z 3M 192k' -c 'write -z 4M 1000' -c 'write -z 5M 300k' shadow.raw >/dev/null
qemu_same vms/c.qcow2 shadow.raw

# a clone of the clone: depth 2, and again zeros hide everything below
ok vmc img create -f qcow2 -b c.qcow2 -F qcow2 vms/cc.qcow2
ok vmc img io -f qcow2 vms/cc.qcow2 -c 'read -P 0xc1 66000 1000' -c 'write -z 0 64k' \
    -c 'discard 6M 64k' -c 'read -P 0 0 64k' -c 'read -P 0 6M 64k'
qemu-io -f qcow2 -c 'read -P 0 6M 64k' -c 'read -P 0xb0 7M 64k' vms/cc.qcow2 >/dev/null ||
    fail "discard in a depth-2 clone exposed lower data"
qemu_check vms/cc.qcow2
qemu_check vms/c.qcow2

# reads through the whole chain use the relative names: works from any cwd
(cd / && "$VMCLONE" img io -f qcow2 "$T/vms/cc.qcow2" -c 'read -P 0xb0 8M 64k') ||
    fail "chain with relative names did not resolve from another directory"

# the base was never written, and is not left locked
[ "$(sha tmpl/base.qcow2)" = "$before" ] || fail "the base changed"
qemu-io -f qcow2 -c 'write -P 1 0 512' tmpl/base.qcow2 >/dev/null ||
    fail "the base is still locked after our commands exited"
note "ok"
