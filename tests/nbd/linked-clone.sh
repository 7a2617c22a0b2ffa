#!/bin/bash
# linked-clone: copy-on-write semantics hold over the wire.
# TRIM and WRITE_ZEROES (with and without NO_HOLE, aligned and not) on a
# served linked clone read back as zeros, never as template data, both
# through the server and from the file afterwards; the template is
# byte-identical (sha256) afterwards; exporting the template writable
# while its clone is served is refused (it is locked as a backing file),
# and so is a second server writing the same clone.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdsh_ --version
requires qemu-io --version

qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0xb0 0 16M' base.qcow2 >/dev/null
before=$(sha base.qcow2)
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 clone.qcow2
serve s clone.qcow2

nbdsh_ -u "$(uri s clone.qcow2)" -c '
Z = lambda n: bytes(n)
h.trim(1 << 20, 1 << 20)                                # aligned trim
h.trim(5000, (3 << 20) + 100)                           # unaligned trim
h.zero(1 << 20, 4 << 20)                                # may unmap
h.zero(3000, (6 << 20) + 1, nbd.CMD_FLAG_NO_HOLE)       # keep allocated
h.zero(1 << 20, 8 << 20, nbd.CMD_FLAG_FAST_ZERO)
assert h.pread(1 << 20, 1 << 20) == Z(1 << 20)
assert h.pread(5000, (3 << 20) + 100) == Z(5000)
assert h.pread(1 << 20, 4 << 20) == Z(1 << 20)
assert h.pread(3000, (6 << 20) + 1) == Z(3000)
assert h.pread(1 << 20, 8 << 20) == Z(1 << 20)
assert h.pread(4096, 10 << 20) == b"\xb0" * 4096        # untouched: template
h.flush()
' || fail "trim/zero over NBD do not read back as zeros"

# the template cannot be served writable while the clone is served
expect_rc 1 "$VMCLONE" serve --socket "$T/t.sock" base.qcow2 2> t.err
grep -qi 'lock' t.err || fail "writable template export: unexpected error: $(cat t.err)"
# nor can the same clone be served by a second server
expect_rc 1 "$VMCLONE" serve --socket "$T/t2.sock" clone.qcow2 2> t2.err
grep -qi 'lock' t2.err || fail "second writer: unexpected error: $(cat t2.err)"
# one file twice in one server
qemu-img create -q -f qcow2 other.qcow2 1M && ln other.qcow2 other-link.qcow2
expect_rc 1 "$VMCLONE" serve --socket "$T/t3.sock" other.qcow2 other-link.qcow2 2> t3.err
grep -qi 'already exported' t3.err || fail "same file twice: $(cat t3.err)"
stop_server s

qemu-io -f qcow2 -c 'read -P 0 1M 1M' -c 'read -P 0 3145828 5000' -c 'read -P 0 4M 1M' \
    -c 'read -P 0 6291457 3000' -c 'read -P 0 8M 1M' -c 'read -P 0xb0 10M 4096' \
    clone.qcow2 >/dev/null || fail "the clone file does not hold zeros"
qemu_check clone.qcow2
ok vmc img check clone.qcow2
[ "$(sha base.qcow2)" = "$before" ] || fail "the template changed"
# the template may be exported read-only next to its clone
serve a --readonly base.qcow2
serve b clone.qcow2
[ "$(nbdinfo --size "$(uri a)")" = $((16 << 20)) ] || fail "read-only template export"
stop_server a
stop_server b
