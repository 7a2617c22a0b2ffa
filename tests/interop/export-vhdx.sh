#!/bin/bash
# export-vhdx: `img convert -O vhdx` (dynamic, fixed, small and default
# block sizes) reads back identical through qemu-img and our reader, and
# qemu-img check accepts it; more than 64 TiB is refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/export-lib.sh"
requires qemu-img --version
requires qemu-io --version

export_common vhdx 1 dynamic fixed
export_ok src.qcow2 qcow2 b1.vhdx vhdx 1 -o block_size=1M
export_ok src.qcow2 qcow2 b1f.vhdx vhdx 1 -o subformat=fixed,block_size=1M
# with 1 MiB blocks only the five with data take room in the file
[ "$(stat -c %s b1.vhdx)" -le $(( (4 + 5) << 20 )) ] || fail "dynamic VHDX allocates zeros"
expect_fail vmc img convert -O vhdx -o block_size=3M src.qcow2 bad.vhdx
err_matches 'block size'
too_big vhdx 65T 'more than a VHDX holds'
