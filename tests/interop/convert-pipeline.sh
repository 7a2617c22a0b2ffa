#!/bin/bash
# convert-pipeline: img convert -O qcow2 of a foreign image larger than
# the pipeline's ring (4 chunks of 2 MiB: a reader thread reads ahead of
# the writing thread) reads like the source, streamOptimized VMDK and
# dynamic VHDX; a grain damaged at 20 MiB, read while earlier chunks are
# being written, fails the convert cleanly (exit 1, the offset in the
# message, no hang or sanitizer report). Run in the ASan build too.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

qemu-img create -q -f raw src.raw 24M
qemu-io -f raw -c 'write -P 0x11 0 3M' -c 'write -P 0x22 5M 7M' \
    -c 'write -P 0x33 14M 9M' -c 'write -P 0x44 23M 512k' src.raw > /dev/null ||
    fail "qemu-io src.raw"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw s.vmdk ||
    fail "convert streamOptimized"
qemu-img convert -f raw -O vhdx src.raw d.vhdx || fail "convert vhdx"

for f in s.vmdk:vmdk d.vhdx:vhdx; do
    img=${f%%:*} fmt=${f#*:}
    vmc img convert -f "$fmt" -O qcow2 "$img" out.qcow2 || fail "convert $img"
    qemu-img compare -q -f raw -F qcow2 src.raw out.qcow2 ||
        fail "$img: our qcow2 differs from the source"
    rm -f out.qcow2
done

# the marker of the grain at guest sector 40960 (20 MiB): wrong LBA
python3 - <<'PYEOF' || fail "could not damage s.vmdk"
import struct
b = bytearray(open('s.vmdk', 'rb').read())
want = struct.pack('<Q', 40960)
for off in range(0, len(b) - 12, 512):
    if b[off:off + 8] == want and 0 < struct.unpack_from('<I', b, off + 8)[0] < 131072:
        struct.pack_into('<Q', b, off, 40961)
        break
else:
    raise SystemExit('no marker for sector 40960')
open('bad.vmdk', 'wb').write(bytes(b))
PYEOF
rc=0
timeout 300 "$VMCLONE" img convert -f vmdk -O qcow2 bad.vmdk out.qcow2 > /dev/null 2> err || rc=$?
cat err >&2
[ "$rc" = 124 ] && fail "convert of bad.vmdk hung"
[ "$rc" = 1 ] || fail "bad.vmdk: exit $rc, expected a clean refusal (1)"
grep -q "20971520" err || fail "bad.vmdk: the message does not name the offset: $(cat err)"
if grep -qE 'Sanitizer|runtime error:' err; then
    fail "sanitizer report from the convert of bad.vmdk"
fi
echo "convert-pipeline: ok"
