#!/bin/bash
# bench-convert: the foreign read drivers' speed (issue 12). The base
# (1 GiB data / 4 GiB virtual by default, common.sh) made into a
# streamOptimized VMDK and a dynamic VHDX by qemu-img, then each
# converted to qcow2 by ours (`vm-clone img convert -O qcow2`) and by
# `qemu-img convert`, interleaved in the same run (abtime.py: medians
# side by side); each of our outputs is checked equal to the source.
#
# Durability differs: `qemu-img convert` opens its target with
# cache=unsafe by default and never syncs it, while ours ends with a
# data sync (fdatasync) of the target, so a third row times
# `qemu-img convert -t writeback`, which syncs as ours does. The last
# lines sum up the median ratio of ours to qemu-img, and that ratio over
# the -t writeback row's (ours against a syncing qemu-img, roughly).
. "$(dirname "$0")/common.sh"
make_base
[ -f base-so.vmdk ] || qemu-img convert -f qcow2 -O vmdk -o subformat=streamOptimized \
    base.qcow2 base-so.vmdk
[ -f base.vhdx ] || qemu-img convert -f qcow2 -O vhdx base.qcow2 base.vhdx
summary=()
for src in base-so.vmdk:vmdk base.vhdx:vhdx; do
    f=${src%%:*} fmt=${src#*:}
    cat "$f" > /dev/null
    table=$($AB --title "convert -O qcow2 of a ${EXTENTS}x${EXTENT_MB} MiB / ${VSIZE_MB} MiB $fmt ($f)" \
        "qemu-img convert=qemu-img convert -f $fmt -O qcow2 $f q.qcow2::rm -f q.qcow2" \
        "vm-clone img convert=$VMC img convert -f $fmt -O qcow2 $f o.qcow2::rm -f o.qcow2" \
        "qemu-img convert -t writeback=qemu-img convert -t writeback -f $fmt -O qcow2 $f w.qcow2::rm -f w.qcow2")
    echo "$table"
    # ratio column: ours / qemu-img (default); qemu-img -t writeback / qemu-img
    ours=$(awk -F'|' '/vm-clone img convert/ {gsub(/ /, "", $6); print $6}' <<<"$table")
    wb=$(awk -F'|' '/-t writeback/ {gsub(/ /, "", $6); print $6}' <<<"$table")
    summary+=("$fmt: ours/qemu-img $ours, ours/(qemu-img -t writeback) $(awk -v a="$ours" -v b="$wb" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')")
    qemu-img compare -q -f "$fmt" -F qcow2 "$f" o.qcow2 ||
        { echo "bench-convert: our qcow2 of $f differs!" >&2; exit 1; }
    rm -f q.qcow2 o.qcow2 w.qcow2
done
echo
echo "### median ratios (below 1: ours faster)"
printf '%s\n' "${summary[@]}"
