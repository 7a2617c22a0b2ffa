#!/bin/bash
# qemu-io: writes over NBD land in the clone as QEMU would write them.
# qemu-io -f raw on the URI writes, zeroes (with and without unmap),
# discards and flushes; the same script on a raw shadow of the guest
# view must give the same bytes, the clone must pass qemu-img check and
# vm-clone img check after the server stopped, and the template must be
# byte-identical (sha256) to before.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires qemu-io --version

qemu-img create -q -f qcow2 base.qcow2 32M
qemu-io -f qcow2 -c 'write -P 0xb0 0 32M' base.qcow2 >/dev/null
before=$(sha base.qcow2)
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 clone.qcow2
raw_of clone.qcow2 shadow.raw

script=(-c 'write -P 0x5a 1M 64k' -c 'write -P 0x5b 1100k 5000' -c 'write -z 2M 1M'
        -c 'write -z -u 3M 192k' -c 'discard 4M 1M' -c 'discard 5000k 3000'
        -c 'write -P 0x61 31M 1M' -c 'write -z 7777 1234' -c 'aio_write -P 0x62 8M 64k'
        -c 'aio_write -P 0x63 9M 64k' -c 'aio_flush' -c 'flush')
serve s clone.qcow2
qemu-io -f raw "${script[@]}" "$(uri s clone.qcow2)" > qio.out || fail "qemu-io over NBD failed: $(cat qio.out)"
# write-zeroes and discard read back as zeros (our contract; the spec
# leaves trimmed contents unspecified)
qemu-io -f raw -c 'read -P 0 2M 1M' -c 'read -P 0 3M 192k' -c 'read -P 0 4M 1M' \
    -c 'read -P 0 5000k 3000' -c 'read -P 0xb0 6M 1M' "$(uri s clone.qcow2)" > qio2.out ||
    fail "zeroed/discarded ranges do not read as zeros over NBD: $(grep -i pattern qio2.out | head -3)"
stop_server s

# shadow: the same writes on a raw copy (discard = zeros, our contract)
qemu-io -f raw "${script[@]//discard/write -z}" shadow.raw >/dev/null || fail "shadow"
qemu_same clone.qcow2 shadow.raw
qemu_check clone.qcow2
ok vmc img check clone.qcow2
[ "$(sha base.qcow2)" = "$before" ] || fail "the template changed"
