#!/bin/bash
# map: `vm-clone img map --output=json` agrees with
# `qemu-img map --output=json` on start/length/depth/present/zero/data
# (host offsets and extent splitting filtered out) for images and chains
# made by qemu-img, and for images we wrote ourselves.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

qio() { qemu-io -f qcow2 "$@" >/dev/null || fail "qemu-io $* failed"; }

same_map() {
    note "map $1"
    qemu_map "$1" > q.map || fail "qemu-img map $1 failed"
    vmc_map "$1" > o.map
    diff -u q.map o.map >&2 || fail "map of $1 differs from qemu-img's (- qemu, + ours)"
    # an offset is reported exactly where qemu-img reports one
    local qo oo
    qo=$(qemu-img map -f qcow2 --output=json "$1" | grep -c '"offset"' || true)
    oo=$(vmc img map -f qcow2 --output=json "$1" | grep -o '"offset"' | wc -l)
    [ "$qo" = "$oo" ] || fail "map of $1: $oo extents with an offset, qemu-img has $qo"
}

# empty, data, zero clusters (with and without unmap), discards
qemu-img create -q -f qcow2 e.qcow2 4M
same_map e.qcow2
for cs in 512 65536 2097152; do
    qemu-img create -q -f qcow2 -o cluster_size=$cs m$cs.qcow2 8M
    qio -c 'write -P 1 0 70000' -c 'write -z 1M 192k' -c 'write -z -u 2M 128k' \
        -c 'write -P 2 3M 4k' -c 'discard 3M 4k' -c 'write -P 3 8190k 2k' m$cs.qcow2
    same_map m$cs.qcow2
done

# a chain of depth 3 with zeroes over data and a shorter base
qemu-img create -q -f qcow2 b.qcow2 3M
qio -c 'write -P 1 0 2M' b.qcow2
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 m.qcow2 6M
qio -c 'write -P 2 512k 64k' -c 'write -z 1M 128k' -c 'write -P 2 4M 64k' m.qcow2
qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 t.qcow2
qio -c 'write -P 3 0 4k' -c 'write -z -u 4M 64k' t.qcow2
same_map b.qcow2
same_map m.qcow2
same_map t.qcow2

# extended L2: subclusters allocated, zero, unallocated
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=65536 -b b.qcow2 -F qcow2 x.qcow2
qio -c 'write -P 4 2048 2048' -c 'write -z 8192 4096' -c 'write -P 4 1M 100' x.qcow2
same_map x.qcow2

# compressed clusters
mkpattern src.raw $((4 << 20))
qemu-img convert -c -f raw -O qcow2 src.raw c.qcow2
same_map c.qcow2

# preallocated metadata: data=false with an offset
qemu-img create -q -f qcow2 -o preallocation=metadata pm.qcow2 2M
same_map pm.qcow2

# images and clones we wrote ourselves
ok vmc img create -f qcow2 -b b.qcow2 -F qcow2 o.qcow2 6M
ok vmc img io -f qcow2 o.qcow2 -c 'write -P 7 100k 10k' -c 'write -z 1M 64k' \
    -c 'write -z -u 1200k 64k' -c 'discard 2M 128k' -c 'write -P 8 5M 1k'
same_map o.qcow2
ok vmc img create -f qcow2 -o extended_l2=on -b b.qcow2 -F qcow2 ox.qcow2
ok vmc img io -f qcow2 ox.qcow2 -c 'write -P 7 100k 3k' -c 'write -z 1M 4k'
same_map ox.qcow2
note "ok"
