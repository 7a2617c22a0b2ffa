#!/bin/bash
# refusals: operations that would break another image or cannot keep the
# guest view fail with one clear line and change nothing.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0xaa 0 8M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 l1.qcow2
qemu-io -f qcow2 -c 'write -P 1 0 1M' l1.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b l1.qcow2 -F qcow2 l2.qcow2
qemu-io -f qcow2 -c 'write -P 2 1M 1M' l2.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 top.qcow2
mkdir elsewhere
qemu-img create -q -f qcow2 -b ../l2.qcow2 -F qcow2 elsewhere/user.qcow2
qemu-img create -q -f qcow2 -b l1.qcow2 -F qcow2 sib.qcow2
sums() { sha256sum base.qcow2 l1.qcow2 l2.qcow2 top.qcow2 elsewhere/user.qcow2 sib.qcow2; }
before=$(sums)

# a user of l2 named with --users (outside the scanned directory): pull
# (which writes into l2) refused
expect_fail vmc img consolidate --method pull --no-scan --users elsewhere/user.qcow2 -- top.qcow2
err_matches "pull up: layer 'l2.qcow2' is also used by 'elsewhere/user.qcow2'"
# a user of l1 found by the directory scan: commit (into l1) refused
expect_fail vmc img consolidate --method commit top.qcow2
err_matches "commit down: layer 'l1.qcow2' is also used by '.*sib.qcow2'"
[ "$(sums)" = "$before" ] || fail "a refused consolidate changed a file"
# the layer is open read-write elsewhere (lock): refused, nothing changed
qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 t2.qcow2
( exec 3>/dev/null; qemu-io -f qcow2 -c 'sleep 3000' l2.qcow2 >/dev/null 2>&1 ) &
holder=$!
cleanup_fn kill $holder
sleep 0.5
if kill -0 $holder 2>/dev/null; then
    expect_fail vmc img consolidate --method pull --no-scan t2.qcow2
    err_matches "lock|in use|busy"
fi
kill $holder 2>/dev/null; wait $holder 2>/dev/null

# relink: image larger than the template
qemu-img create -q -f qcow2 big.qcow2 32M
expect_fail vmc img relink -b base.qcow2 -F qcow2 big.qcow2
err_matches "does not fit"
# relink onto itself / onto an image backed by it
expect_fail vmc img relink -b l1.qcow2 -F qcow2 l1.qcow2
expect_fail vmc img relink -b top.qcow2 -F qcow2 l1.qcow2
err_matches "backed by|lock"
expect_fail vmc img relink -b missing.qcow2 -F qcow2 l1.qcow2
[ "$(sums)" = "$before" ] || fail "a refused relink changed a file"
# flatten of a read-only file
cp top.qcow2 ro.qcow2; chmod 0444 ro.qcow2
if [ "$(id -u)" != 0 ]; then
    expect_fail vmc img flatten ro.qcow2
fi
# clone: exactly one of --linked/--full, usage errors
expect_fail vmc img clone base.qcow2 x.qcow2
expect_fail vmc img clone --linked --full base.qcow2 x.qcow2
expect_fail vmc img clone --linked base.qcow2
expect_fail vmc img clone --linked --count 0 base.qcow2 'x%d.qcow2'
expect_fail vmc img clone --full --count 2 base.qcow2 'x%d.qcow2'
[ -e x.qcow2 ] && fail "a refused clone created x.qcow2"
note ok
