#!/bin/bash
# read-qemu-images: images that qemu-img/qemu-io produce, with every
# option we claim to read, read byte-identical through
# `vm-clone img convert -O raw` and `qemu-img convert -O raw`, and
# `vm-clone img compare` agrees with `qemu-img compare` (exit code and
# message) on identical and on differing pairs.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

qio() { qemu-io -f qcow2 "$@" >/dev/null || fail "qemu-io $* failed"; }

# the usual scribbles: partial/cross-cluster data, zero clusters, discard
scribble() {
    qio -c 'write -P 0x11 0 70000' -c 'write -P 0x22 200k 5000' -c 'write -P 0x33 1M 512k' \
        -c 'write -z 1100k 128k' -c 'write -z -u 1300k 64k' -c 'discard 3M 1M' \
        -c 'write -P 0x44 6M 1' -c 'write -P 0x55 8191k 1k' "$1"
}

check_reads() {
    local img=$1 rc_q rc_o out_q out_o
    note "$img"
    rm -f ref.raw ours.raw mod.raw
    qemu-img convert -f qcow2 -O raw "$img" ref.raw || fail "qemu-img convert $img failed"
    vmc img convert -f qcow2 -O raw "$img" ours.raw || fail "vm-clone img convert $img failed"
    [ "$(stat -c %s ours.raw)" = "$(stat -c %s ref.raw)" ] || fail "$img: raw sizes differ"
    same_bytes ours.raw ref.raw

    # compare: identical
    ok vmc img compare -f qcow2 -F raw "$img" ref.raw
    # compare: one byte differs, both tools must say so, at the same offset
    cp ref.raw mod.raw
    printf '\x99' | dd of=mod.raw bs=1 seek=$((1024 * 1024 + 4097)) conv=notrunc status=none
    rc_q=0; out_q=$(qemu-img compare -f qcow2 -F raw "$img" mod.raw 2>&1) || rc_q=$?
    rc_o=0; out_o=$(vmc img compare -f qcow2 -F raw "$img" mod.raw) || rc_o=$?
    [ "$rc_q" = 1 ] || fail "oracle: qemu-img compare exited $rc_q"
    [ "$rc_o" = 1 ] || fail "$img: vm-clone img compare exited $rc_o on differing images"
    [ "$out_o" = "$out_q" ] || fail "$img: compare says '$out_o', qemu-img says '$out_q'"
}

# cluster sizes
for cs in 512 4096 65536 2097152; do
    qemu-img create -q -f qcow2 -o cluster_size=$cs cs$cs.qcow2 8M
    scribble cs$cs.qcow2
    check_reads cs$cs.qcow2
done

# refcount widths
for rb in 1 2 4 8 16 32 64; do
    qemu-img create -q -f qcow2 -o refcount_bits=$rb,cluster_size=4096 rb$rb.qcow2 8M
    scribble rb$rb.qcow2
    check_reads rb$rb.qcow2
done

# compat 0.10 (no zero clusters: zeroes are written as data) and 1.1
for compat in 0.10 1.1; do
    qemu-img create -q -f qcow2 -o compat=$compat compat$compat.qcow2 8M
    scribble compat$compat.qcow2
    check_reads compat$compat.qcow2
done

# compressed clusters: zlib and zstd, via convert -c
mkpattern src.raw $((8 << 20))
dd if=/dev/zero bs=64k count=16 status=none | tr '\0' 'A' | dd of=src.raw bs=64k seek=40 conv=notrunc status=none
yes 'vmclone compressible text' | head -c $((2 << 20)) | dd of=src.raw bs=1M seek=5 conv=notrunc status=none
for ct in zlib zstd; do
    for cs in 4096 65536; do
        qemu-img convert -c -f raw -O qcow2 -o compression_type=$ct,cluster_size=$cs src.raw comp-$ct-$cs.qcow2
        check_reads comp-$ct-$cs.qcow2
    done
    # compressed clusters partly overwritten afterwards
    cp comp-$ct-65536.qcow2 comp-$ct-ow.qcow2
    qio -c 'write -P 0x66 5M 3000' -c 'write -z 5200k 64k' comp-$ct-ow.qcow2
    check_reads comp-$ct-ow.qcow2
done

# extended L2: subcluster-granular data and zeroes
for cs in 16384 65536 2097152; do
    qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=$cs el2-$cs.qcow2 8M
    scribble el2-$cs.qcow2
    qio -c 'write -P 0x77 4M 2048' -c 'write -P 0x78 4200k 1' -c 'write -z 4196k 4k' el2-$cs.qcow2
    check_reads el2-$cs.qcow2
done

# backing chains of depth >= 3 with recorded formats, a shorter base,
# zero clusters over base data, and an extended-L2 overlay in the middle
qemu-img create -q -f qcow2 c0.qcow2 6M
qio -c 'write -P 0xa0 0 6M' c0.qcow2
qemu-img create -q -f qcow2 -b c0.qcow2 -F qcow2 c1.qcow2 8M
qio -c 'write -P 0xa1 64k 64k' -c 'write -z 1M 100k' -c 'write -P 0xa1 7M 4k' c1.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=131072 -b c1.qcow2 -F qcow2 c2.qcow2
qio -c 'write -P 0xa2 100k 8k' -c 'write -z -u 2M 512k' -c 'discard 3M 128k' c2.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4096 -b c2.qcow2 -F qcow2 c3.qcow2
qio -c 'write -P 0xa3 5000 3' -c 'write -z 4M 4k' c3.qcow2
for c in c1 c2 c3; do
    check_reads $c.qcow2
done
# a raw file at the bottom
truncate -s 4M b.raw
qemu-io -f raw -c 'write -P 0xbb 0 1M' b.raw >/dev/null
qemu-img create -q -f qcow2 -b b.raw -F raw over-raw.qcow2
qio -c 'write -P 0xbc 512k 1k' over-raw.qcow2
check_reads over-raw.qcow2
# a backing in another directory, named relatively
mkdir -p tmpl vm
qemu-img create -q -f qcow2 tmpl/t.qcow2 2M
qio -c 'write -P 0xcc 0 2M' tmpl/t.qcow2
qemu-img create -q -f qcow2 -b ../tmpl/t.qcow2 -F qcow2 vm/v.qcow2
qio -c 'write -P 0xcd 1M 4k' vm/v.qcow2
check_reads vm/v.qcow2

# internal snapshots present (refcounts > 1, COW of shared clusters)
qemu-img create -q -f qcow2 snap.qcow2 8M
scribble snap.qcow2
qemu-img snapshot -c s1 snap.qcow2
qio -c 'write -P 0xee 0 128k' -c 'write -z 1M 64k' snap.qcow2
qemu-img snapshot -c s2 snap.qcow2
qio -c 'write -P 0xef 2M 64k' snap.qcow2
check_reads snap.qcow2

# preallocated images
for pa in metadata falloc full; do
    qemu-img create -q -f qcow2 -o preallocation=$pa pre-$pa.qcow2 4M
    qio -c 'write -P 0x12 1M 4k' pre-$pa.qcow2
    check_reads pre-$pa.qcow2
done

# lazy refcounts, left dirty by a crash: readable read-only
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0x13 0 300k' -c abort dirty.qcow2 >/dev/null 2>&1
check_reads dirty.qcow2
note "ok"
