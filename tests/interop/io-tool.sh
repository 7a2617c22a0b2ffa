#!/bin/bash
# io-tool: `vm-clone img io` is the instrument of the other tests, so it
# is tested first: its writes are seen by qemu-io, qemu-io's writes are
# seen by it, and `read -P` fails on a mismatch.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

qio() { qemu-io "$@" >/dev/null || fail "qemu-io $* failed"; }

for fmt in raw qcow2; do
    note "format $fmt"
    img=t.$fmt
    rm -f "$img"
    qemu-img create -q -f $fmt "$img" 4M

    # ours writes, QEMU verifies (aligned, unaligned, zeroes)
    ok vmc img io -f $fmt "$img" -c 'write -P 0xab 0 64k' -c 'write -P 0x12 70000 5000' \
        -c 'write -P 0x34 1M 128k' -c 'write -z 1040k 8k' -c 'flush'
    qio -f $fmt -c 'read -P 0xab 0 64k' -c 'read -P 0 64k 4464' -c 'read -P 0x12 70000 5000' \
        -c 'read -P 0x34 1M 16k' -c 'read -P 0 1040k 8k' -c 'read -P 0x34 1048k 80k' "$img"

    # QEMU writes, ours verifies
    qio -f $fmt -c 'write -P 0x5a 2M 12345' "$img"
    ok vmc img io -f $fmt "$img" -c 'read -P 0x5a 2M 12345' -c 'read -P 0 3M 4k'

    # a wrong pattern must make io fail (otherwise no test can fail)
    expect_fail vmc img io -f $fmt "$img" -c 'read -P 0xcd 0 64k'
    expect_fail vmc img io -f $fmt "$img" -c 'read -P 0xab 0 64k' -c 'read -P 0xab 64k 512'
    # a later command still runs only if the earlier ones passed: a
    # mismatch in the first of two reads fails the whole run
    expect_fail vmc img io -f $fmt "$img" -c 'read -P 0x00 0 512' -c 'read -P 0xab 0 512'
    # out of range and malformed commands fail cleanly
    expect_fail vmc img io -f $fmt "$img" -c 'read 4M 512'
    expect_fail vmc img io -f $fmt "$img" -c 'write -P 0x11 4095k 2k'
    expect_fail vmc img io -f $fmt "$img" -c 'frobnicate 0 512'
    expect_fail vmc img io -f $fmt "$img" -c 'read -P 0x11 zero 512'

    if [ $fmt = qcow2 ]; then
        qemu_check "$img"
    fi
done
note "ok"
