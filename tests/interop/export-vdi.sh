#!/bin/bash
# export-vdi: `img convert -O vdi` (dynamic, static; qemu-img's static=on
# too) reads back identical through qemu-img and our reader, and qemu-img
# check accepts it; more blocks than 32-bit offsets reach are refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/export-lib.sh"
requires qemu-img --version
requires qemu-io --version

export_common vdi 1 dynamic static
export_ok src.qcow2 qcow2 static2.vdi vdi 1 -o static=on
# 1 MiB blocks with data: 0, 3, 5, 9, 10 (and the zeroed 64k is a hole)
[ "$(data_mib out-dynamic.vdi vdi)" -le 5 ] || fail "dynamic VDI allocates zeros"
[ "$(stat -c %s out-dynamic.vdi)" -lt $((8 << 20)) ] || fail "dynamic VDI file too large"
too_big vdi 5T 'more than a VDI' -o block_size=4k
