#!/bin/bash
# locks: QEMU-compatible OFD locks.  While qemu-io holds an image
# read-write, `vm-clone img io` cannot write it, and while we hold an
# image read-write (tests/helpers/hold-open), qemu-io cannot; a base
# opened as a backing file is locked against writers but readable.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires mkfifo --version

qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0xb0 0 4M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 img.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 other.qcow2

# wait_locked IMG PID: until a shared open by qemu-img is refused (at most
# ~30 s: a loaded machine running the ASan suite is slow to start qemu-io);
# fails at once, with qemu-io's own words, if the holder PID has died
wait_locked() {
    for _ in $(seq 300); do
        qemu-img info -f qcow2 "$1" >/dev/null 2>&1 || return 0
        kill -0 "$2" 2>/dev/null || fail "the qemu-io holding $1 exited: $(cat "$T/qio.err")"
        sleep 0.1
    done
    fail "$1 never became locked"
}

# ---- QEMU holds img read-write
qemu-io -f qcow2 -c 'sleep 120000' img.qcow2 </dev/null >/dev/null 2>"$T/qio.err" &
qpid=$!
cleanup_fn "kill $qpid"
wait_locked img.qcow2 $qpid
expect_fail vmc img io -f qcow2 img.qcow2 -c 'write -P 1 0 512'
err_matches 'lock'
expect_fail vmc img commit -f qcow2 img.qcow2
expect_fail vmc img resize -f qcow2 img.qcow2 8M
# its base is shared-locked by QEMU: we may read it (e.g. to clone it) ...
ok vmc img create -f qcow2 -b base.qcow2 -F qcow2 clone2.qcow2
ok vmc img io -f qcow2 other.qcow2 -c 'read -P 0xb0 0 64k' -c 'write -P 2 0 512'
# ... but not write it
expect_fail vmc img io -f qcow2 base.qcow2 -c 'write -P 1 0 512'
err_matches 'lock'
kill $qpid; wait $qpid 2>/dev/null
ok vmc img io -f qcow2 img.qcow2 -c 'write -P 1 0 512'

# ---- we hold img read-write
hold_open img.qcow2
out=$(qemu-io -f qcow2 -c 'write -P 3 0 512' img.qcow2 2>&1) && fail "qemu-io wrote an image we hold read-write"
echo "$out" | grep -q 'lock' || fail "qemu-io failed, but not on a lock: $out"
qemu-img info -f qcow2 img.qcow2 >/dev/null 2>&1 && fail "qemu-img opened an image we hold read-write without -U"
qemu-img info -U -f qcow2 img.qcow2 >/dev/null || fail "qemu-img info -U should still work"
# the base, opened by us as a backing file: readable, not writable
qemu-io -r -f qcow2 -c 'read -P 0xb0 0 512' base.qcow2 >/dev/null || fail "base not readable while used as a backing file"
out=$(qemu-io -f qcow2 -c 'write -P 3 0 512' base.qcow2 2>&1) && fail "qemu-io wrote a base we use as a backing file"
# and a second vm-clone writer is refused too
expect_fail vmc img io -f qcow2 img.qcow2 -c 'write -P 1 0 512'
err_matches 'lock'
hold_release
qemu-io -f qcow2 -c 'write -P 3 0 512' img.qcow2 >/dev/null || fail "lock not released when we closed the image"
qemu-io -f qcow2 -c 'write -P 3 0 512' base.qcow2 >/dev/null || fail "base lock not released"
note "ok"
