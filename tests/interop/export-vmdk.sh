#!/bin/bash
# export-vmdk: `img convert -O vmdk` (monolithicSparse, streamOptimized
# at zlib levels 0, 1 and the default, -c) reads back identical through
# qemu-img and our reader, qemu-img check accepts it, and qemu-img
# converts a streamOptimized output (what OVA files carry) byte-
# identically to ours; more than 32-bit sector numbers reach is refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/export-lib.sh"
requires qemu-img --version
requires qemu-io --version

export_common vmdk 1 monolithicSparse streamOptimized
for level in 0 1; do
    export_ok src.qcow2 qcow2 "z$level.vmdk" vmdk 1 \
        -o subformat=streamOptimized,zlib_level=$level
done
[ "$(stat -c %s z0.vmdk)" -gt "$(stat -c %s z1.vmdk)" ] || fail "zlib_level=0 does not store"
export_ok src.qcow2 qcow2 c.vmdk vmdk 1 -c -o subformat=streamOptimized
expect_fail vmc img convert -c -O vmdk src.qcow2 c2.vmdk
err_matches 'streamOptimized'
expect_fail vmc img convert -O vmdk -o zlib_level=10 src.qcow2 bad.vmdk
err_matches 'zlib_level'
# random data across several grain tables (32 MiB each) in a stream
mkpattern rnd.raw $((70 << 20))
export_ok rnd.raw raw rnd.vmdk vmdk 1 -o subformat=streamOptimized
qemu-img convert -f vmdk -O raw rnd.vmdk q.raw || fail "qemu-img reading our stream"
same_bytes rnd.raw q.raw
qemu-img info rnd.vmdk | grep -q 'create type: streamOptimized' || fail "create type"
export_ok rnd.raw raw rnd-s.vmdk vmdk 1
too_big vmdk 3T 'more than a VMDK sparse extent holds'
