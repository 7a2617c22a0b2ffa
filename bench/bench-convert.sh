#!/bin/bash
# bench-convert: the foreign read drivers' speed (issue 12). The base
# (1 GiB data / 4 GiB virtual by default, common.sh) made into a
# streamOptimized VMDK and a dynamic VHDX by qemu-img, then each
# converted to qcow2 by ours (`vm-clone img convert -O qcow2`) and by
# `qemu-img convert`, interleaved in the same run (abtime.py: medians
# side by side); each of our outputs is checked equal to the source.
. "$(dirname "$0")/common.sh"
make_base
[ -f base-so.vmdk ] || qemu-img convert -f qcow2 -O vmdk -o subformat=streamOptimized \
    base.qcow2 base-so.vmdk
[ -f base.vhdx ] || qemu-img convert -f qcow2 -O vhdx base.qcow2 base.vhdx
for src in base-so.vmdk:vmdk base.vhdx:vhdx; do
    f=${src%%:*} fmt=${src#*:}
    cat "$f" > /dev/null
    $AB --title "convert -O qcow2 of a ${EXTENTS}x${EXTENT_MB} MiB / ${VSIZE_MB} MiB $fmt ($f)" \
        "qemu-img convert=qemu-img convert -f $fmt -O qcow2 $f q.qcow2::rm -f q.qcow2" \
        "vm-clone img convert=$VMC img convert -f $fmt -O qcow2 $f o.qcow2::rm -f o.qcow2"
    qemu-img compare -q -f "$fmt" -F qcow2 "$f" o.qcow2 ||
        { echo "bench-convert: our qcow2 of $f differs!" >&2; exit 1; }
    rm -f q.qcow2 o.qcow2
done
