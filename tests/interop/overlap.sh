#!/bin/bash
# overlap: issue 9 finding 15. On an image whose refcounts lie (a zeroed
# refcount block or entry, a zeroed refcount table, a refcount-table
# offset of 0, an L2 table whose refcount reads 0), a write that needs a new cluster must not land on
# metadata: it is refused and the image marked corrupt, as QEMU does
# ("Preventing invalid write on metadata"). The header, L1 and L2 tables
# stay intact, so the data written before still reads back.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

# poke FILE OFFSET HEXBYTES: overwrite bytes in place
poke() {
    python3 - "$@" <<'PY'
import sys
f, off, data = sys.argv[1], int(sys.argv[2], 0), bytes.fromhex(sys.argv[3])
with open(f, 'r+b') as fh:
    fh.seek(off); fh.write(data)
PY
}

# refused IMG: a write that allocates is refused naming the overlap, the
# image is marked corrupt, and what was written before reads back.
refused() {
    local img=$1 h
    h=$(head -c 72 "$img" | sha256sum)   # all but the feature bits
    expect_fail vmc img io -f qcow2 "$img" -c 'write -P 0x77 195608 68536'
    err_matches 'corrupt|overlap|needs cleaning'
    [ "$(head -c 72 "$img" | sha256sum)" = "$h" ] || fail "$img: the header was overwritten"
    qemu-img info -f qcow2 "$img" 2>/dev/null | grep -q 'corrupt: true' ||
        fail "$img: not marked corrupt"
    ok vmc img io -r -f qcow2 "$img" -c 'read -P 0x11 0 64k' > /dev/null
}

note "zeroed refcount block entries (the issue's reproducer)"
qemu-img create -q -f qcow2 a.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' a.qcow2 > /dev/null
poke a.qcow2 0x20000 0000000000000000
refused a.qcow2

note "a whole zeroed refcount block"
qemu-img create -q -f qcow2 b.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' b.qcow2 > /dev/null
python3 -c "
with open('b.qcow2', 'r+b') as f:
    f.seek(0x20000); f.write(bytes(0x10000))"
refused b.qcow2

note "a zeroed refcount table (every refcount block gone)"
qemu-img create -q -f qcow2 d.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' d.qcow2 > /dev/null
poke d.qcow2 0x10000 0000000000000000
refused d.qcow2

note "a refcount-table offset of 0 (the header read as the table)"
qemu-img create -q -f qcow2 e.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' e.qcow2 > /dev/null
poke e.qcow2 48 0000000000000000
h=$(head -c 48 e.qcow2 | sha256sum)
expect_fail vmc img io -f qcow2 e.qcow2 -c 'write -P 0x77 195608 68536'
[ "$(head -c 48 e.qcow2 | sha256sum)" = "$h" ] || fail "e.qcow2: the header was overwritten"
ok vmc img io -r -f qcow2 e.qcow2 -c 'read -P 0x11 0 64k' > /dev/null

note "an L2 table whose refcount reads 0"
qemu-img create -q -f qcow2 c.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' c.qcow2 > /dev/null
# clusters: 0 header, 1 reftable, 2 refblock, 3 L1, 4 L2, 5 data
poke c.qcow2 0x20008 0000
expect_fail vmc img io -f qcow2 c.qcow2 -c 'write -P 0x77 1M 64k'
err_matches 'corrupt|overlap|needs cleaning'
ok vmc img io -r -f qcow2 c.qcow2 -c 'read -P 0x11 0 64k' > /dev/null

echo "overlap: ok"
