#!/bin/bash
# vmdk: the VMDK read driver on files made by qemu-img. For each subformat
# qemu-img creates (monolithicSparse, streamOptimized, monolithicFlat,
# twoGbMaxExtentSparse, twoGbMaxExtentFlat), with patterns at scattered
# offsets, zero regions and a last partial grain: our `img convert -O raw`
# is byte-identical to qemu-img's and our `img map` agrees with qemu-img's
# (every field). Also a delta disk (-b base.vmdk -F vmdk) read through its
# parent, zeroed grains (-o zeroed_grain=on), `img info` (format and create
# type), writes refused cleanly (the file unchanged), and extent names that
# leave the descriptor's directory (absolute, '..', a symlink) refused.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

qio() { qemu-io -f vmdk "$@" > /dev/null || fail "qemu-io $* failed"; }

# same_guest IMG: our raw conversion is qemu-img's, byte for byte
same_guest() {
    rm -f o.raw q.raw
    qemu-img convert -f vmdk -O raw "$1" q.raw || fail "qemu-img convert $1"
    vmc img convert -O raw "$1" o.raw || fail "img convert $1"
    cmp q.raw o.raw || fail "img convert -O raw of $1 differs from qemu-img's"
}

same_map() {
    qemu-img map -f vmdk --output=json "$1" > q.map || fail "qemu-img map $1"
    vmc img map --output=json "$1" > o.map || fail "img map $1"
    diff -u q.map o.map >&2 || fail "map of $1 differs from qemu-img's (- qemu, + ours)"
}

check_img() {   # check_img IMG CREATE-TYPE
    note "$1 ($2)"
    same_guest "$1"
    same_map "$1"
    # img info: format and create type as qemu-img prints them
    local re='^(file format|virtual size|cluster_size|backing file|    create type):'
    qemu-img info "$1" | grep -E "$re" > q.info
    vmc img info "$1" > info || fail "img info $1"
    grep -E "$re" info > o.info
    diff -u q.info o.info >&2 || fail "img info $1 differs from qemu-img's (- qemu, + ours)"
    grep -qx "    create type: $2" info || fail "img info $1: no create type $2"
}

# 5000 KiB: not a multiple of the 64 KiB grain (a last partial grain)
fill() {        # fill IMG
    qio -c 'write -P 0x11 0 70k' -c 'write -P 0x22 1M 4k' -c 'write -z 1M 2k' \
        -c 'write -P 0x33 3000k 300k' -c 'write -P 0x44 4990k 10k' "$1"
}

for sub in monolithicSparse monolithicFlat; do
    qemu-img create -q -f vmdk -o subformat=$sub $sub.vmdk 5000k || fail "create $sub"
    fill $sub.vmdk
    check_img $sub.vmdk $sub
done

# streamOptimized: qemu-io cannot fill one; convert a filled raw image
qemu-img create -q -f raw src.raw 5000k
qemu-io -f raw -c 'write -P 0x11 0 70k' -c 'write -P 0x33 3000k 300k' \
    -c 'write -P 0x44 4990k 10k' src.raw > /dev/null || fail "qemu-io src.raw"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk ||
    fail "convert to streamOptimized"
check_img stream.vmdk streamOptimized

# twoGbMaxExtent*: 2100 MiB splits into two extents; data across the cut
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    qemu-img create -q -f vmdk -o subformat=$sub $sub.vmdk 2100M || fail "create $sub"
    qio -c 'write -P 0x55 0 64k' -c 'write -P 0x66 2047M 2M' \
        -c 'write -P 0x77 2099M 1000k' $sub.vmdk
    check_img $sub.vmdk $sub
done
[ -e twoGbMaxExtentSparse-s002.vmdk ] || fail "qemu-img made one extent only"

# zeroed grains
qemu-img create -q -f vmdk -o zeroed_grain=on zg.vmdk 1M
qio -c 'write -P 1 0 128k' -c 'write -z 0 64k' -c 'write -z 512k 64k' zg.vmdk
check_img zg.vmdk monolithicSparse

# a delta disk over a base: unallocated grains read from the parent
qemu-img create -q -f vmdk base.vmdk 5000k
fill base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk delta.vmdk || fail "create delta"
qio -c 'write -P 0x99 64k 4k' -c 'write -z 3000k 64k' delta.vmdk
check_img delta.vmdk monolithicSparse
vmc img info delta.vmdk | grep -qx 'backing file: base.vmdk' || fail "delta: no backing file"

# read-only: writes are refused cleanly and change nothing
sum=$(md5sum < monolithicSparse.vmdk)
rc=0
vmc img io monolithicSparse.vmdk -c 'write 0 4k' > /dev/null 2> err || rc=$?
[ "$rc" = 1 ] || fail "a write to a VMDK exited $rc: $(cat err)"
grep -q "read-only" err || fail "write refusal unclear: $(cat err)"
[ "$(md5sum < monolithicSparse.vmdk)" = "$sum" ] || fail "a refused write changed the file"
# (img convert -O vmdk writes one front to back: tests/interop/export-vmdk.sh;
# an image to write at random offsets is not made)
rc=0
vmc img create -f vmdk new.vmdk 1M > /dev/null 2> err || rc=$?
[ "$rc" = 1 ] && grep -q "vmdk images are read-only here" err ||
    fail "img create -f vmdk: exit $rc: $(cat err)"

# extent names: only files in the descriptor's directory
mkdir -p d out
qemu-img create -q -f raw out/data.raw 1M
ln -s ../out/data.raw d/link.raw
for name in /etc/passwd ../out/data.raw link.raw; do
    printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "%s" 0\n' \
        "$name" > d/bad.vmdk
    rc=0
    vmc img info d/bad.vmdk > /dev/null 2> err || rc=$?
    [ "$rc" = 1 ] || fail "extent '$name': exit $rc"
    grep -qE "refused" err || fail "extent '$name': no clear refusal: $(cat err)"
done
echo "vmdk: ok"
