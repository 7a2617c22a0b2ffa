#!/bin/bash
# vhdx: the read-only VHDX driver against qemu-img 7.2. Dynamic (two block
# sizes) and fixed images made by qemu-img and filled by qemu-io convert to
# raw byte-identically; our map marks data exactly the blocks qemu-io wrote
# (qemu-img has no block status for VHDX: it maps everything as data); a
# differencing file built from [MS-VHDX] (qemu-img cannot make one) reads
# through its parent with its sector bitmap, its parent name confined to
# the image's directory; a non-empty log is refused; a sweep of damaged
# headers, region tables, metadata and BAT entries is refused cleanly.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import struct, uuid'

tool() { python3 "$TESTS_DIR/interop/vhdx-tool.py" "$@" || fail "vhdx-tool $* failed"; }

fill() {
    qemu-io -f vhdx -c 'write -P 0x11 0 64k' -c 'write -P 0x22 3M 100k' \
        -c 'write -P 0x33 5M 4k' -c 'write -P 0x44 9M 512' \
        -c 'write -P 0x55 10300k 4k' "$1" >/dev/null || fail "qemu-io on $1 failed"
}

# data_blocks IMG BLOCK: the blocks our map reports as data, one a line
data_blocks() {
    vmc img map --output=json "$1" | python3 -c '
import json, sys
bs = int(sys.argv[1])
seen = set()
for e in json.load(sys.stdin):
    if e["data"]:
        for b in range(e["start"] // bs, (e["start"] + e["length"] - 1) // bs + 1):
            seen.add(b)
print(" ".join(map(str, sorted(seen))))' "$2"
}

same_as_qemu() {
    local f=$1 bs=$2 want=$3
    note "convert and map $f"
    qemu-img convert -f vhdx -O raw "$f" q.raw || fail "qemu-img convert $f failed"
    rm -f o.raw
    vmc img convert -O raw "$f" o.raw || fail "vm-clone img convert $f failed"
    same_bytes q.raw o.raw
    [ "$(data_blocks "$f" "$bs")" = "$want" ] ||
        fail "map of $f: data blocks '$(data_blocks "$f" "$bs")', expected '$want'"
    vmc img info "$f" | grep -q 'file format: vhdx' || fail "$f not probed as vhdx"
}

# 10 MiB + 300 KiB: the last block is partial
qemu-img create -q -f vhdx -o block_size=1M d1.vhdx 10540k
fill d1.vhdx
same_as_qemu d1.vhdx $((1 << 20)) "0 3 5 9 10"
qemu-img create -q -f vhdx -o block_size=8M d8.vhdx 10540k
fill d8.vhdx
same_as_qemu d8.vhdx $((8 << 20)) "0 1"
qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M fx.vhdx 10540k
fill fx.vhdx
same_as_qemu fx.vhdx $((1 << 20)) "0 3 5 9 10"
expect_fail vmc img io -f vhdx d1.vhdx -c 'write 0 512'
err_matches 'read-only'

# a differencing file over d1.vhdx (1 MiB blocks, same size)
qemu-img convert -f vhdx -O raw d1.vhdx base.raw
qemu-img create -q -f vhdx -o block_size=1M child.vhdx 10540k
cp child.vhdx fresh.vhdx
tool mkdiff child.vhdx base.raw expected.raw '.\d1.vhdx'
rm -f o.raw
ok vmc img convert -O raw child.vhdx o.raw
same_bytes expected.raw o.raw
vmc img info child.vhdx | grep -q 'backing file: d1.vhdx' || fail "parent not shown as backing file"
vmc img map --output=json child.vhdx > child.map || fail "map of child.vhdx failed"
grep -q '"depth": 1' child.map || fail "map of child.vhdx shows no parent extent"
for loc in '..\d1.vhdx' 'a\..\..\d1.vhdx' '\tmp\d1.vhdx' 'C:\d1.vhdx'; do
    cp fresh.vhdx bad.vhdx
    tool mkdiff bad.vhdx base.raw x.raw "$loc"
    expect_fail vmc img info bad.vhdx
    err_matches 'parent file name .* not a relative name'
done

# the log: a GUID with no entry is an empty log; an entry is refused
cp d1.vhdx lg.vhdx && tool log-guid lg.vhdx
rm -f o.raw && ok vmc img convert -O raw lg.vhdx o.raw
qemu-img convert -f vhdx -O raw d1.vhdx q.raw
same_bytes q.raw o.raw
cp d1.vhdx lg.vhdx && tool log-entry lg.vhdx
expect_fail vmc img convert -O raw lg.vhdx o2.raw
err_matches 'unreplayed log; open it once in Hyper-V or qemu-img check -r all'

# sweep: each damaged copy is refused with a message, never a crash
sweep() {
    local what=$1 pattern=$2
    shift 2
    cp d1.vhdx bad.vhdx
    tool "$@"
    expect_fail vmc img convert -f vhdx -O raw bad.vhdx bad.raw
    err_matches "$pattern"
    note "refused: $what"
}
bat=2097152   # the BAT region of a qemu-img-made VHDX
sweep "header CRC" 'neither VHDX header' header-crc bad.vhdx
sweep "header version" 'version' header bad.vhdx 66 2 2
sweep "log past EOF" 'log is misplaced' header bad.vhdx 72 8 0x7ff0000000000000
sweep "region table CRC" 'region table is valid' region-crc bad.vhdx
sweep "BAT region past EOF" 'region at .* outside' region bad.vhdx bat off 0x7ff0000000000000
sweep "BAT region unaligned" 'region at .* misplaced' region bad.vhdx bat off 0x200200
sweep "BAT region on the metadata" 'regions overlap' region bad.vhdx bat off 0x300000
sweep "BAT region length 0" 'misplaced' region bad.vhdx bat len 0
sweep "block size 0" 'block size 0 ' meta bad.vhdx bsize 0
sweep "block size 2^31" 'block size' meta bad.vhdx bsize 0x80000000
sweep "sector size 1000" 'logical sector size' meta bad.vhdx lss 1000
sweep "virtual size near 2^64" 'virtual size' meta bad.vhdx vsize 0xfffffffffffffe00
sweep "virtual size over 64 TiB" 'virtual size' meta bad.vhdx vsize 0x4000000000200
sweep "parent flag without a locator" 'without a parent locator' meta bad.vhdx flags 2
sweep "BAT entry past EOF" 'BAT entry 0 .* outside the file' bat bad.vhdx 0 0x7ff0000000000006
sweep "BAT entry on the metadata" 'BAT entry 0 .* on metadata' bat bad.vhdx 0 0x300006
sweep "BAT entry on the headers" 'BAT entry 0 .* on metadata' bat bad.vhdx 0 0x6
sweep "BAT entry on the BAT" 'BAT entry 1 .* on metadata' bat bad.vhdx 1 $((bat | 6))
sweep "BAT entry state 5" 'invalid payload state' bat bad.vhdx 1 5
sweep "partly present without a parent" 'partly present' bat bad.vhdx 1 0x400007
cp d1.vhdx bad.vhdx && truncate -s 512k bad.vhdx
expect_fail vmc img info -f vhdx bad.vhdx
err_matches 'too short'
exit 0
