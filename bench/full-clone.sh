#!/bin/bash
# full-clone: convert the base (1 GiB data / 4 GiB virtual by default)
# to a standalone qcow2, ours vs qemu-img (hot page cache), interleaved.
. "$(dirname "$0")/common.sh"
make_base
cat base.qcow2 > /dev/null
$AB --title "full clone: convert -O qcow2 of a ${EXTENTS}x${EXTENT_MB} MiB / ${VSIZE_MB} MiB image" \
    "qemu-img convert=qemu-img convert -f qcow2 -O qcow2 base.qcow2 q.qcow2::rm -f q.qcow2" \
    "vm-clone img convert=$VMC img convert -f qcow2 -O qcow2 base.qcow2 o.qcow2::rm -f o.qcow2" \
    "cp (sparse)=cp --sparse=always base.qcow2 c.qcow2::rm -f c.qcow2"
qemu-img compare -q -f qcow2 -F qcow2 base.qcow2 o.qcow2 || { echo "full clone differs from the base!" >&2; exit 1; }
rm -f q.qcow2 o.qcow2 c.qcow2
