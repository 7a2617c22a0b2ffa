#!/bin/bash
# clone-full: `img clone --full` picks copy_file_range for a standalone
# image of the same format, a guest-view copy for a chain or another
# format, keeps holes, preallocates with --thick, and every clone is
# check-clean and compares equal to its source.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

method() { python3 -c 'import json,sys; print(json.load(sys.stdin)["method"])'; }

qemu-img create -q -f qcow2 src.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 4M' -c 'write -P 0x22 30M 2M' -c 'write -z 40M 1M' src.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b src.qcow2 -F qcow2 top.qcow2
qemu-io -f qcow2 -c 'write -P 0x33 1M 64k' -c 'write -z 31M 64k' top.qcow2 >/dev/null
raw_of src.qcow2 src.raw

m=$(vmc img clone --full --json src.qcow2 a.qcow2 | method) || fail "clone --full failed"
[ "$m" = copy_file_range ] || [ "$m" = reflink ] || fail "standalone same-format clone used '$m'"
qemu_check a.qcow2; qemu_same a.qcow2 src.raw

m=$(vmc img clone --full --json top.qcow2 b.qcow2 | method) || fail "clone --full of a chain failed"
[ "$m" = copy ] || fail "a chain must be copied through its guest view, got '$m'"
qemu_check b.qcow2
qemu-img compare -q b.qcow2 top.qcow2 || fail "full clone of the chain differs"
qemu-img info b.qcow2 | grep -q '^backing file' && fail "full clone has a backing file"

m=$(vmc img clone --full --json -O raw top.qcow2 c.raw | method) || fail "-O raw failed"
[ "$m" = copy ] || fail "-O raw of qcow2 used '$m'"
qemu-img compare -q -F raw c.raw top.qcow2 2>/dev/null || qemu-img compare -q top.qcow2 c.raw || fail "raw clone differs"
# sparse: a 64 MiB image with ~6 MiB of data stays small
[ "$(du -k c.raw | cut -f1)" -lt 16384 ] || fail "raw clone is not sparse ($(du -k c.raw))"

m=$(vmc img clone --full --json c.raw d.raw | method) || fail "raw -> raw failed"
[ "$m" = copy_file_range ] || [ "$m" = reflink ] || fail "raw -> raw used '$m'"
cmp c.raw d.raw || fail "raw clone differs"
[ "$(du -k d.raw | cut -f1)" -lt 16384 ] || fail "copy_file_range did not keep holes"

# --thick: fully allocated, same content
ok vmc img clone --full -q --thick c.raw e.raw
[ "$(du -k e.raw | cut -f1)" -ge 65536 ] || fail "--thick raw clone is not allocated ($(du -k e.raw))"
cmp c.raw e.raw || fail "--thick raw differs"
m=$(vmc img clone --full --thick --json top.qcow2 f.qcow2 | method) || fail "--thick qcow2 failed"
[ "$m" = copy ] || fail "--thick qcow2 must be a guest copy, got '$m'"
qemu_check f.qcow2
qemu-img compare -q f.qcow2 top.qcow2 || fail "--thick qcow2 differs"
[ "$(du -k f.qcow2 | cut -f1)" -ge 65536 ] || fail "--thick qcow2 not preallocated ($(du -k f.qcow2))"

# --no-offload, -m 1, -m 4 give identical guest views
for opt in "--no-offload -m 1" "--no-offload -m 4"; do
    rm -f g.qcow2
    ok vmc img clone --full -q $opt src.qcow2 g.qcow2
    qemu_check g.qcow2; qemu_same g.qcow2 src.raw
done
# refusals
expect_fail vmc img clone --full -q src.qcow2 a.qcow2
err_matches "already exists"
expect_fail vmc img clone --full -q --force top.qcow2 src.qcow2
err_matches "source image or one of its backing files"
qemu_same src.qcow2 src.raw
left=$(find . -name '.*.vmc-*')
[ -z "$left" ] || fail "temporary files left: $left"
note ok
