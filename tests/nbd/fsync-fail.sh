#!/bin/bash
# fsync-fail: reliability test 9b over NBD. The server's first fdatasync
# fails once (VMCLONE_FAULT=sync:1:EIO; every later one would succeed):
# the client's FLUSH gets an error, and so do every later FLUSH, WRITE and
# FUA write on that connection (the image is in a failed state, no
# retry-then-succeed), and on a new connection to the same server (which
# keeps the image open); reads still work. A new
# server reopens the image: the data flushed before the failure is there,
# it writes and flushes again, stops cleanly, and the image checks clean
# (leaks allowed). qcow2 and raw exports.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdsh_ --version

qemu-img create -q -f qcow2 img.qcow2 16M
truncate -s 16M plain.raw
# The data "flushed before the failure": written before the server starts.
qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' img.qcow2 > /dev/null || fail 'qemu-io write'
qemu-io -f raw -c 'write -P 0x5a 0 64k' plain.raw > /dev/null || fail 'qemu-io write'

for exp in img.qcow2 plain.raw; do
    VMCLONE_FAULT=sync:1:EIO serve s "$exp"
    nbdsh_ -u "$(uri s "$exp")" -c '
import errno
def fails(f, what):
    try:
        f()
    except nbd.Error as ex:
        assert ex.errno == "EIO", "%s: %s" % (what, ex.errno)
        return
    raise SystemExit("%s succeeded after the failed flush" % what)
h.pwrite(b"B" * 65536, 1 << 20)
fails(lambda: h.flush(), "the failing flush")
fails(lambda: h.flush(), "a second flush")
fails(lambda: h.pwrite(b"C" * 4096, 2 << 20), "a write")
fails(lambda: h.pwrite(b"C" * 4096, 2 << 20, nbd.CMD_FLAG_FUA), "a FUA write")
fails(lambda: h.zero(65536, 3 << 20), "write-zeroes")
fails(lambda: h.flush(), "a third flush")
assert h.pread(65536, 0) == b"\x5a" * 65536, "reads stopped working"
print("ok")
' > first.out 2>&1 || fail "$exp, first connection: $(cat first.out)"
    server_alive s
    # The server keeps the image open: a new connection finds it failed.
    nbdsh_ -u "$(uri s "$exp")" -c '
try:
    h.pwrite(b"E" * 4096, 4 << 20)
    h.flush()
except nbd.Error as ex:
    assert ex.errno == "EIO", ex.errno
    print("ok")
else:
    raise SystemExit("a new connection wrote and flushed")
' > again.out 2>&1 || fail "$exp, second connection: $(cat again.out)"
    # Stopping closes the image (its close reports the failure too).
    kill -TERM "${_srv_pid[s]}"
    wait "${_srv_pid[s]}" || true
    ! grep -qE 'Sanitizer|runtime error:' "$T/s.err" ||
        fail "$exp: sanitizer report: $(cat "$T/s.err")"
    # Reopened by a new server: the flushed data is there, it works again.
    serve s "$exp"
    nbdsh_ -u "$(uri s "$exp")" -c '
assert h.pread(65536, 0) == b"\x5a" * 65536, "flushed data lost"
h.pwrite(b"D" * 4096, 4 << 20)
h.flush()
assert h.pread(4096, 4 << 20) == b"D" * 4096
print("ok")
' > second.out 2>&1 || fail "$exp, after reopening: $(cat second.out)"
    stop_server s
done
rc=0; qemu-img check -q img.qcow2 > check.out 2>&1 || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "img.qcow2 does not check clean: $(cat check.out)"
ok
