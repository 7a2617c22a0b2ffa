#!/bin/bash
# export-vpc: `img convert -O vpc` (dynamic, fixed) reads back identical
# through qemu-img and our reader; sizes round up to a CHS geometry as
# qemu-img's do, force_size=on keeps them exact, sizes past CHS keep
# theirs; more than 2040 GiB is refused. (qemu-img cannot check vpc.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/export-lib.sh"
requires qemu-img --version
requires qemu-io --version

export_common vpc 0 dynamic fixed

# the zero and unallocated ranges of the source stay holes of a dynamic
# disk: 2 MiB blocks with data are 0-2, 2-4, 4-6, 8-10, 10-12 MiB
[ "$(data_mib out-dynamic.vpc vpc)" -le 10 ] || fail "dynamic VHD allocates zeros"

# CHS rounding like qemu-img: the same size for the same request
qemu-img create -q -f vpc q.vpc 5000001 || fail "qemu-img create vpc"
[ "$(size_of odd-dynamic.vpc vpc)" = "$(size_of q.vpc vpc)" ] \
    || fail "our CHS size $(size_of odd-dynamic.vpc vpc) is not qemu-img's $(size_of q.vpc vpc)"
export_ok odd.raw raw exact.vpc vpc 0 -o force_size=on
[ "$(size_of exact.vpc vpc)" = 5000192 ] || fail "force_size did not keep the size"
export_ok odd.raw raw exact-fixed.vpc vpc 0 -o subformat=fixed,force_size=on
# past the largest geometry (127 GiB) the size field is exact
qemu-img create -q -f qcow2 200g.qcow2 200G
export_ok 200g.qcow2 qcow2 200g.vpc vpc 0
[ "$(size_of 200g.vpc vpc)" = $((200 << 30)) ] || fail "200 GiB VHD size"
rm -f 200g.vpc
expect_fail vmc img convert -c -O vpc src.qcow2 c.vpc
err_matches "compression not supported for file format 'vpc'"
too_big vpc 2041G 'more than a VHD holds'
