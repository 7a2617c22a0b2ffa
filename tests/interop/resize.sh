#!/bin/bash
# resize: growing keeps data and adds zeros (also past the end of a
# linked clone's base), the result is check-clean; shrinking a qcow2
# needs --shrink like qemu-img; raw files resize both ways.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

vsize() { qemu-img info --output=json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }

for cs in 512 65536; do
    qemu-img create -q -f qcow2 -o cluster_size=$cs g.qcow2 3M
    qemu-io -f qcow2 -c 'write -P 0x11 0 3M' g.qcow2 >/dev/null
    ok vmc img resize -f qcow2 g.qcow2 +5M
    [ "$(vsize g.qcow2)" = $((8 << 20)) ] || fail "resize +5M gave $(vsize g.qcow2)"
    ok vmc img resize -f qcow2 g.qcow2 1G
    [ "$(vsize g.qcow2)" = $((1 << 30)) ] || fail "resize 1G gave $(vsize g.qcow2)"
    qemu_check g.qcow2
    qemu-io -f qcow2 -c 'read -P 0x11 0 3M' -c 'read -P 0 3M 5M' -c 'read -P 0 1023M 1M' g.qcow2 >/dev/null ||
        fail "resize lost data or the new space is not zero (cluster $cs)"
    # and it is writable at the new end
    ok vmc img io -f qcow2 g.qcow2 -c 'write -P 0x22 1023M 1M' -c 'read -P 0x22 1023M 1M'
    qemu_check g.qcow2
    rm -f g.qcow2
done

# a linked clone grown past its base: the new part reads zeros
qemu-img create -q -f qcow2 b.qcow2 2M
qemu-io -f qcow2 -c 'write -P 0xbb 0 2M' b.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 c.qcow2
ok vmc img resize -f qcow2 c.qcow2 6M
qemu_check c.qcow2
qemu-io -f qcow2 -c 'read -P 0xbb 0 2M' -c 'read -P 0 2M 4M' c.qcow2 >/dev/null ||
    fail "grown clone does not read base + zeros"

# shrinking a qcow2: refused without --shrink, image unchanged
qemu-img create -q -f qcow2 s.qcow2 8M
s=$(sha s.qcow2)
expect_fail vmc img resize -f qcow2 s.qcow2 4M
[ "$(sha s.qcow2)" = "$s" ] && [ "$(vsize s.qcow2)" = $((8 << 20)) ] || fail "refused shrink changed the image"
expect_fail vmc img resize -f qcow2 s.qcow2 -- -9M
expect_fail vmc img resize -f qcow2 s.qcow2 1Q

# raw: both ways (shrink with --shrink)
truncate -s 1M r.raw
qemu-io -f raw -c 'write -P 0x33 0 1M' r.raw >/dev/null
ok vmc img resize -f raw r.raw 3M
[ "$(stat -c %s r.raw)" = $((3 << 20)) ] || fail "raw grow"
qemu-io -f raw -c 'read -P 0x33 0 1M' -c 'read -P 0 1M 2M' r.raw >/dev/null || fail "raw grow content"
ok vmc img resize -f raw --shrink r.raw 512k
[ "$(stat -c %s r.raw)" = $((512 << 10)) ] || fail "raw shrink"
note "ok"
