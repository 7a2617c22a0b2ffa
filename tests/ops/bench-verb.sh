#!/bin/bash
# bench-verb: `img bench` takes qemu-img bench's flags and prints its two
# lines; writes land where qemu-img bench puts them.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

qemu-img create -q -f qcow2 b.qcow2 16M
out=$(vmc img bench -c 100 -d 4 -s 4k -S 64k -o 1M -t none -f qcow2 b.qcow2) || fail "bench failed"
grep -qx 'Sending 100 read requests, 4096 bytes each, 4 in parallel (starting at offset 1048576, step size 65536)' <<<"$out" ||
    fail "first line differs: $out"
grep -qE '^Run completed in [0-9]+\.[0-9]{3} seconds\.$' <<<"$out" || fail "no completion line: $out"
ok vmc img bench -q -w -c 64 -d 16 -s 4k -S 128k --pattern=0x5c b.qcow2 > /dev/null
qemu_check b.qcow2
# 64 writes at a 128 KiB step from 0 cover 0..8M in a 16 MiB image
qemu-io -f qcow2 -c 'read -P 0x5c 0 4k' -c 'read -P 0x5c 8257536 4k' -c 'read -P 0 8261632 4k' -c 'read -P 0 4k 124k' \
    b.qcow2 >/dev/null || fail "bench -w wrote the wrong places"
# wrap: more requests than fit wrap like qemu-img bench and do not fail
ok vmc img bench -q -w -c 300 -d 2 -s 64k b.qcow2 > /dev/null
qemu_check b.qcow2
expect_fail vmc img bench -c x b.qcow2
expect_fail vmc img bench --flush-interval=4 b.qcow2
ok vmc img bench -q -w -c 50 --flush-interval=8 b.qcow2 > /dev/null
note ok
