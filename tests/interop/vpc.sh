#!/bin/bash
# vpc: the read-only VHD driver against qemu-img 7.2. Dynamic and fixed
# images (CHS-sized and force_size) made by qemu-img and filled by qemu-io
# convert to raw byte-identically and map with the same allocation; a
# differencing disk built from the specification reads through its parent
# (relative locator only, confined to the image's directory); a sweep of
# damaged headers is refused cleanly. Differencing VHDs and damaged files
# are not made by qemu-img (docs: /work/shared/notes/formats.md).
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import struct'

tool() { python3 "$TESTS_DIR/interop/vpc-tool.py" "$@" || fail "vpc-tool $* failed"; }

fill() {
    qemu-io -f vpc -c 'write -P 0x11 0 64k' -c 'write -P 0x22 3M 100k' \
        -c 'write -z 3200k 8k' -c 'write -P 0x33 5M 4k' \
        -c 'write -P 0x44 9M 512' -c 'write -P 0x55 10300k 4k' "$1" \
        >/dev/null || fail "qemu-io on $1 failed"
}

same_as_qemu() {
    local f=$1
    note "convert and map $f"
    qemu-img convert -f vpc -O raw "$f" q.raw || fail "qemu-img convert $f failed"
    rm -f o.raw
    vmc img convert -f vpc -O raw "$f" o.raw || fail "vm-clone img convert $f failed"
    same_bytes q.raw o.raw
    qemu-img map -f vpc --output=json "$f" | map_filter > q.map
    vmc img map -f vpc --output=json "$f" | map_filter > o.map
    diff -u q.map o.map >&2 || fail "map of $f differs from qemu-img's (- qemu, + ours)"
    [ "$(vmc img info -f vpc --output=json "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" = \
      "$(qemu-img info -f vpc --output=json "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" ] ||
        fail "virtual size of $f differs from qemu-img's"
}

# 10 MiB + 300 KiB: the last block is partial; CHS rounding without force_size
for opts in "" "-o force_size=on" "-o subformat=fixed" "-o subformat=fixed,force_size=on"; do
    rm -f d.vhd
    # shellcheck disable=SC2086
    qemu-img create -q -f vpc $opts d.vhd 10540k || fail "qemu-img create $opts failed"
    fill d.vhd
    same_as_qemu d.vhd
done

# without -f a dynamic VHD is recognised by its footer copy
rm -f d.vhd
qemu-img create -q -f vpc dyn.vhd 10540k
fill dyn.vhd
vmc img info dyn.vhd | grep -q 'file format: vpc' || fail "dynamic VHD not probed as vpc"
ok vmc img convert -O raw dyn.vhd probed.raw
qemu-img convert -f vpc -O raw dyn.vhd q.raw
same_bytes q.raw probed.raw
# read-only driver: a write open is refused cleanly
expect_fail vmc img io -f vpc dyn.vhd -c 'write 0 512'
err_matches 'read-only'

# a differencing disk over dyn.vhd: relative locator, partly present blocks
tool mkdiff dyn.vhd diff.vhd expected.raw q.raw '.\dyn.vhd'
rm -f o.raw
ok vmc img convert -f vpc -O raw diff.vhd o.raw
same_bytes expected.raw o.raw
vmc img info -f vpc diff.vhd | grep -q 'backing file: dyn.vhd' || fail "parent not shown as backing file"
vmc img map -f vpc --output=json diff.vhd > diff.map || fail "map of diff.vhd failed"
grep -q '"depth": 1' diff.map || fail "map of diff.vhd shows no parent extent"
# from a subdirectory, with the parent named relative to it
mkdir sub && tool mkdiff dyn.vhd sub/d2.vhd expected2.raw q.raw 'dyn.vhd'
cp dyn.vhd sub/ && rm -f o.raw && ok vmc img convert -f vpc -O raw sub/d2.vhd o.raw
same_bytes expected2.raw o.raw
# parent names escaping the directory, absolute ones, absolute-only locators
for loc in '..\dyn.vhd' 'sub\..\..\dyn.vhd' '\tmp\dyn.vhd' 'C:\dyn.vhd'; do
    tool mkdiff dyn.vhd sub/bad.vhd x.raw q.raw "$loc"
    expect_fail vmc img convert -f vpc -O raw sub/bad.vhd x.out
    err_matches 'parent file name .* not a relative name'
done
tool mkdiff dyn.vhd bad.vhd x.raw q.raw 'C:\dyn.vhd' W2ku
expect_fail vmc img info -f vpc bad.vhd
err_matches 'absolute parent names'

# header sweep: each damaged copy is refused with a message, never a crash
sweep() {
    local what=$1 pattern=$2
    shift 2
    cp dyn.vhd bad.vhd
    tool "$@"
    expect_fail vmc img convert -f vpc -O raw bad.vhd bad.raw
    err_matches "$pattern"
    note "refused: $what"
}
sweep "footer checksum" 'footer checksum' corrupt-sum bad.vhd footer
sweep "header checksum" 'header checksum' corrupt-sum bad.vhd dyn
# the size field counts only for writers other than Virtual PC and QEMU's
# default ("qem2" is QEMU's force_size)
for sz in 0xfffffffffffffe00 0x8000000000000000 0x10000000000; do
    cp dyn.vhd bad.vhd
    tool patch bad.vhd footer 28 4 0x71656d32
    tool patch bad.vhd footer 48 8 $sz
    expect_fail vmc img info -f vpc bad.vhd
    err_matches 'entries, the disk size|too large'
done
sweep "header past EOF" 'header offset .* outside' patch bad.vhd footer 16 8 0x7ffffffffffff000
sweep "BAT past EOF" 'block table .* outside' patch bad.vhd dyn 16 8 0x100000000
sweep "BAT entries huge" 'block table .* outside|memory limit' patch bad.vhd dyn 28 4 0xfffffff0
sweep "block size 0" 'block size 0 ' patch bad.vhd dyn 32 4 0
sweep "block size 2^31" 'block size' patch bad.vhd dyn 32 4 0x80000000
sweep "block size 3*512" 'block size' patch bad.vhd dyn 32 4 1536
sweep "BAT entry past EOF" 'block 0 .* outside' patch bad.vhd bat 0 4 0x7fffff00
sweep "BAT entry on the header" 'block 0 .* overlaps' patch bad.vhd bat 0 4 1
sweep "BAT entry on the BAT" 'block 1 .* overlaps' patch bad.vhd bat 1 4 3
sweep "disk type 7" 'disk type' patch bad.vhd footer 60 4 7
sweep "dynamic header cookie" 'cxsparse' patch bad.vhd dyn 0 8 0
cp dyn.vhd bad.vhd && truncate -s 1536 bad.vhd
expect_fail vmc img info -f vpc bad.vhd
truncate -s 100 bad.vhd
expect_fail vmc img info -f vpc bad.vhd
err_matches 'too short'
# a fixed disk whose footer claims more than the file holds
qemu-img create -q -f vpc -o subformat=fixed,force_size=on fx.vhd 1M
cp fx.vhd bad.vhd && tool patch bad.vhd footer 48 8 $((64 << 20))
expect_fail vmc img info -f vpc bad.vhd
err_matches 'fixed VHD of'
exit 0
