#!/bin/bash
# flags-errors: nbdsh scripts (libnbd with strict mode off, so it sends
# what a buggy client would) against flags and the error values of NBD
# proto.md "Error values":
#  - out of range READ / BLOCK_STATUS / TRIM: EINVAL; WRITE / WRITE_ZEROES
#    beyond the end: ENOSPC; READ over the 32 MiB payload limit: EINVAL;
#    length 0: EINVAL; offset + length wrapping 2^64: EINVAL/ENOSPC;
#  - read-only export: WRITE, TRIM, WRITE_ZEROES fail with EPERM and the
#    connection goes on; flags not advertised (FUA on read-only, FAST_ZERO
#    on raw) fail with EINVAL; NO_HOLE on READ: EINVAL;
#  - FUA writes, NO_HOLE zeroes, FLUSH, CACHE work;
#  - FAST_ZERO: whole clusters are zeroed; a partial cluster holding data
#    fails with ENOTSUP and is left unchanged;
#  - BLOCK_STATUS with REQ_ONE gives one extent per context.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdsh_ --version

qemu-img create -q -f qcow2 img.qcow2 16M
truncate -s 16M plain.raw
qemu-img create -q -f qcow2 ro.qcow2 4M
serve s img.qcow2 plain.raw
serve r --readonly ro.qcow2

cat > errs.py <<'PY'
import errno, sys
def expect(f, e, what):
    try:
        f()
    except nbd.Error as ex:
        assert ex.errno == e, "%s: got %s, want %s" % (what, ex.errno, e)
        return
    raise SystemExit("%s: no error" % what)
PY

nbdsh_ -c 'h.add_meta_context("base:allocation")' -c 'h.add_meta_context("qemu:allocation-depth")' \
    -c "h.connect_uri('$(uri s img.qcow2)')" -c 'h.set_strict_mode(0)' -c "exec(open('errs.py').read())" -c '
sz = h.get_size()
assert sz == 16 << 20
expect(lambda: h.pread(1024, sz - 512), "EINVAL", "read straddling the end")
expect(lambda: h.pread(512, sz + 4096), "EINVAL", "read past the end")
expect(lambda: h.pread(512, 1 << 63), "EINVAL", "read at 2^63")
expect(lambda: h.pread(1024, (1 << 64) - 512), "EINVAL", "read wrapping 2^64")
expect(lambda: h.pread(64 << 20, 0), "EINVAL", "read over the max payload")
expect(lambda: h.pread(0, 0), "EINVAL", "read of length 0")
expect(lambda: h.pwrite(b"\0" * 1024, sz - 512), "ENOSPC", "write straddling the end")
expect(lambda: h.pwrite(b"\0" * 1024, (1 << 64) - 512), "ENOSPC", "write wrapping 2^64")
expect(lambda: h.zero(4096, sz), "ENOSPC", "zero past the end")
expect(lambda: h.trim(4096, sz), "EINVAL", "trim past the end")
expect(lambda: h.cache(4096, sz), "EINVAL", "cache past the end")
expect(lambda: h.block_status(4096, sz, lambda *a: 0), "EINVAL", "block status past the end")
expect(lambda: h.pread(512, 0, nbd.CMD_FLAG_NO_HOLE), "EINVAL", "read with NO_HOLE")
expect(lambda: h.pread(512, 0, 0x8000), "EINVAL", "read with an unknown flag")
# after all these the connection still works
h.pwrite(b"A" * 4096, 8192, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 8192) == b"A" * 4096
h.pwrite(b"B" * 70000, 65536 * 3)
h.zero(65536, 1 << 20, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(65536, 1 << 20) == bytes(65536)
h.flush()
h.cache(1 << 20, 0)
# FAST_ZERO: partial cluster with data -> ENOTSUP, unchanged
h.pwrite(b"C" * 65536, 4 << 20)
expect(lambda: h.zero(4096, (4 << 20) + 4096, nbd.CMD_FLAG_FAST_ZERO), "ENOTSUP", "fast zero of a partial data cluster")
assert h.pread(65536, 4 << 20) == b"C" * 65536
# whole clusters: fast
h.zero(1 << 20, 4 << 20, nbd.CMD_FLAG_FAST_ZERO)
assert h.pread(1 << 20, 4 << 20) == bytes(1 << 20)
# a partial cluster that reads as zeros already is fine too
h.zero(4096, (8 << 20) + 4096, nbd.CMD_FLAG_FAST_ZERO)
# REQ_ONE: exactly one extent per context
got = {}
def cb(ctx, off, ext, err):
    got[ctx] = ext
h.block_status(sz, 0, cb, nbd.CMD_FLAG_REQ_ONE)
assert got and all(len(v) == 2 for v in got.values()), got
print("ok")
' > s.out || fail "qcow2 export: $(cat s.out)"

nbdsh_ -u "$(uri s plain.raw)" -c 'h.set_strict_mode(0)' -c "exec(open('errs.py').read())" -c '
assert not h.can_fast_zero()
expect(lambda: h.block_status(4096, 0, lambda *a: 0), "EINVAL", "block status without a context")
expect(lambda: h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO), "EINVAL", "fast zero not advertised")
h.pwrite(b"x" * 4096, 0)
h.trim(4096, 0)
assert h.pread(4096, 0) == bytes(4096)
' || fail "raw export"

nbdsh_ -u "$(uri r)" -c 'h.set_strict_mode(0)' -c "exec(open('errs.py').read())" -c '
assert h.is_read_only() and h.can_flush() and not h.can_fua()
expect(lambda: h.pwrite(b"x" * 4096, 0), "EPERM", "write to read-only")
expect(lambda: h.pwrite(b"x" * (1 << 20), 4096), "EPERM", "big write to read-only")
expect(lambda: h.zero(4096, 0), "EPERM", "zero on read-only")
expect(lambda: h.trim(4096, 0), "EPERM", "trim on read-only")
expect(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA), "EINVAL", "FUA not advertised")
h.flush()
assert h.pread(4096, 0) == bytes(4096)
' || fail "read-only export"
# qemu-io refuses to write read-only too (error, no crash)
if qemu-io -f raw -c 'write 0 4k' "$(uri r)" > qio.out 2>&1 && ! grep -qi 'read-only\|permission' qio.out; then
    fail "qemu-io wrote to a read-only export: $(cat qio.out)"
fi
server_alive s
server_alive r
stop_server s
stop_server r
qemu_check img.qcow2
