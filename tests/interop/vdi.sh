#!/bin/bash
# vdi: the read-only VDI driver against qemu-img 7.2. Dynamic and static
# images made by qemu-img and filled by qemu-io convert to raw
# byte-identically and map with the same allocation; the probe recognises
# them; a sweep of damaged headers and block maps (fields near 2^64, maps
# and entries past the end of the file, block sizes 0 and huge, entries on
# the header) is refused cleanly. qemu-img reads a block map or an entry
# past the end of the file as zeros; we refuse (docs: formats notes).
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import struct'

# vdi_patch FILE OFFSET SIZE VALUE: little-endian header field (or, with
# OFFSET "map:N", block map entry N).
vdi_patch() {
    python3 - "$@" <<'PY' || fail "vdi_patch $* failed"
import struct, sys
path, where, size, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4], 0)
with open(path, "r+b") as f:
    if where.startswith("map:"):
        f.seek(0x154)
        bmap = struct.unpack("<I", f.read(4))[0]
        off = bmap + 4 * int(where[4:])
    else:
        off = int(where, 0)
    f.seek(off)
    f.write(struct.pack({1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size], value))
PY
}

fill() {
    qemu-io -f vdi -c 'write -P 0x11 0 64k' -c 'write -P 0x22 3M 100k' \
        -c 'write -z 3200k 8k' -c 'write -P 0x33 5M 4k' \
        -c 'write -P 0x44 9M 512' -c 'write -P 0x55 10300k 4k' "$1" \
        >/dev/null || fail "qemu-io on $1 failed"
}

same_as_qemu() {
    local f=$1
    note "convert and map $f"
    qemu-img convert -f vdi -O raw "$f" q.raw || fail "qemu-img convert $f failed"
    rm -f o.raw
    vmc img convert -O raw "$f" o.raw || fail "vm-clone img convert $f failed"
    same_bytes q.raw o.raw
    qemu-img map -f vdi --output=json "$f" | map_filter > q.map
    vmc img map --output=json "$f" | map_filter > o.map
    diff -u q.map o.map >&2 || fail "map of $f differs from qemu-img's (- qemu, + ours)"
    vmc img info "$f" | grep -q 'file format: vdi' || fail "$f not probed as vdi"
}

# 10 MiB + 300 KiB: the last 1 MiB block is partial
for opts in "" "-o static=on"; do
    rm -f d.vdi
    # shellcheck disable=SC2086
    qemu-img create -q -f vdi $opts d.vdi 10540k || fail "qemu-img create $opts failed"
    fill d.vdi
    same_as_qemu d.vdi
    cp d.vdi "d${opts:+-static}.vdi.keep"
done
# an odd disk size (VBoxManage convertfromraw makes them) rounds up
cp d.vdi.keep odd.vdi
vdi_patch odd.vdi 0x170 8 $((10540 * 1024 - 100))
same_as_qemu odd.vdi
expect_fail vmc img io -f vdi d.vdi.keep -c 'write 0 512'
err_matches 'read-only'

sweep() {
    local what=$1 pattern=$2
    shift 2
    cp d.vdi.keep bad.vdi
    vdi_patch bad.vdi "$@"
    expect_fail vmc img convert -f vdi -O raw bad.vdi bad.raw
    err_matches "$pattern"
    note "refused: $what"
}
sweep "signature" 'not a|signature' 0x40 4 0
sweep "version" 'version' 0x44 4 0x00020000
sweep "image type 4" 'image type' 0x4c 4 4
sweep "parent uuid" 'differencing' 0x1b8 4 1
sweep "sector size" 'sector size' 0x168 4 4096
sweep "block size 0" 'block size' 0x178 4 0
sweep "block size 2^31" 'block size' 0x178 4 0x80000000
sweep "block extra" 'extra data' 0x17c 4 512
sweep "disk size near 2^64" 'disk size exceeds' 0x170 8 0xfffffffffffffe00
sweep "block count huge" 'block map is outside|memory limit' 0x180 4 0xfffffff0
sweep "block map past EOF" 'block map is outside' 0x154 4 0x7ffffe00
sweep "block map on the header" 'misplaced' 0x154 4 0
sweep "data offset before the map" 'overlaps the data' 0x158 4 0x200
sweep "map entry past EOF" 'past the end of the file' map:0 4 0x7ffffff0
sweep "map entry used twice" 'used twice' map:3 4 0
truncate -s 300 bad.vdi
expect_fail vmc img info -f vdi bad.vdi
err_matches 'too short'
exit 0
