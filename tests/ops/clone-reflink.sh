#!/bin/bash
# clone-reflink: on an XFS filesystem with reflink=1 (a file, loop-mounted;
# skipped without root, mkfs.xfs or loop devices) a full clone of a
# standalone image is a reflink: extents shared, no data copied.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires mkfs.xfs -V
requires python3 -c 'import json'
[ "$(id -u)" = 0 ] || skip "needs root to mount a loop device"

truncate -s 1G xfs.img
mkfs.xfs -q -m reflink=1 xfs.img >/dev/null 2>&1 || skip "mkfs.xfs -m reflink=1 failed"
mkdir mnt
mount -o loop xfs.img mnt 2>/dev/null || skip "cannot loop-mount"
cleanup_fn umount "$T/mnt"

qemu-img create -q -f qcow2 mnt/src.qcow2 256M
qemu-io -f qcow2 -c 'write -P 0x5a 0 64M' mnt/src.qcow2 >/dev/null
sync
used0=$(df -k --output=used mnt | tail -1)
out=$(vmc img clone --full --json mnt/src.qcow2 mnt/clone.qcow2) || fail "clone failed"
m=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["method"])' "$out")
[ "$m" = reflink ] || fail "expected a reflink on XFS, got '$m'"
sync
used1=$(df -k --output=used mnt | tail -1)
[ $((used1 - used0)) -lt 8192 ] || fail "reflink clone used $((used1 - used0)) KiB"
if command -v filefrag >/dev/null; then
    filefrag -v mnt/clone.qcow2 | grep -q shared || fail "clone extents are not shared"
fi
qemu_check mnt/clone.qcow2
qemu-img compare -q mnt/clone.qcow2 mnt/src.qcow2 || fail "reflink clone differs"
# writes to the clone do not reach the source
qemu-io -f qcow2 -c 'write -P 0x77 0 1M' mnt/clone.qcow2 >/dev/null
qemu-io -f qcow2 -c 'read -P 0x5a 0 1M' mnt/src.qcow2 >/dev/null || fail "source changed"
# --thick never reflinks
out=$(vmc img clone --full --thick --json mnt/src.qcow2 mnt/thick.qcow2) || fail "--thick failed"
m=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["method"])' "$out")
[ "$m" != reflink ] || fail "--thick must not reflink"
qemu-img compare -q mnt/thick.qcow2 mnt/src.qcow2 || fail "thick clone differs"
note ok
