#!/bin/bash
# clone-linked: `img clone --linked`: guest view equal to the base, check
# clean, the backing-name rule (relative in the same tree, absolute
# across filesystems or with --absolute), the defaults (v3, extended L2,
# 128 KiB clusters) and --no-extended-l2 / -o, --count with %d,
# EEXIST/--force, and no temporary files left behind.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

mkdir -p tmpl vms/deep
qemu-img create -q -f qcow2 tmpl/base.qcow2 32M
qemu-io -f qcow2 -c 'write -P 0xb1 0 8M' -c 'write -P 0xb2 20M 1M' tmpl/base.qcow2 >/dev/null
bsum=$(sha tmpl/base.qcow2)

ok vmc img clone --linked -q tmpl/base.qcow2 vms/c.qcow2
qemu_check vms/c.qcow2
qemu-img compare -q vms/c.qcow2 tmpl/base.qcow2 || fail "clone differs from its base"
info=$(qemu-img info vms/c.qcow2)
grep -q '^backing file: \.\./tmpl/base.qcow2 ' <<<"$info" || fail "backing name not relative: $info"
grep -q '^backing file format: qcow2' <<<"$info" || fail "backing format not recorded"
grep -q 'extended l2: true' <<<"$info" || fail "extended L2 not the default"
grep -q '^cluster_size: 131072' <<<"$info" || fail "cluster size is not 128k"
grep -q 'compat: 1.1' <<<"$info" || fail "not qcow2 v3"
# QEMU reads and writes it; the base never changes
qemu-io -f qcow2 -c 'write -P 0xc1 4k 4k' -c 'read -P 0xb1 0 4k' -c 'read -P 0xc1 4k 4k' \
    -c 'read -P 0xb1 8k 4k' vms/c.qcow2 >/dev/null || fail "qemu-io on the clone failed"
qemu_check vms/c.qcow2
[ "$(sha tmpl/base.qcow2)" = "$bsum" ] || fail "the base changed"

# deeper directory, and from another cwd
ok vmc img clone --linked -q "$T/tmpl/base.qcow2" vms/deep/d.qcow2
qemu-img info vms/deep/d.qcow2 | grep -q '^backing file: \.\./\.\./tmpl/base.qcow2 ' ||
    fail "relative name from a deeper directory is wrong"
(cd / && qemu-img compare -q "$T/vms/deep/d.qcow2" "$T/tmpl/base.qcow2") || fail "deep clone unreadable"
# same directory: bare name
ok vmc img clone --linked -q tmpl/base.qcow2 tmpl/sib.qcow2
qemu-img info tmpl/sib.qcow2 | grep -q '^backing file: base.qcow2 ' || fail "same-dir name is not bare"
# --absolute
ok vmc img clone --linked -q --absolute tmpl/base.qcow2 vms/abs.qcow2
qemu-img info vms/abs.qcow2 | grep -q "^backing file: $(realpath tmpl/base.qcow2)\$" ||
    fail "--absolute did not store the absolute path"
# across filesystems (/dev/shm is tmpfs): absolute
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    shm=$(mktemp -d /dev/shm/vmc-ops.XXXXXX)
    cleanup_fn rm -rf "$shm"
    ok vmc img clone --linked -q tmpl/base.qcow2 "$shm/x.qcow2"
    qemu-img info "$shm/x.qcow2" | grep -q "^backing file: $(realpath tmpl/base.qcow2)\$" ||
        fail "a clone on another filesystem must store an absolute name"
fi

# --no-extended-l2 and -o
ok vmc img clone --linked -q --no-extended-l2 tmpl/base.qcow2 vms/plain.qcow2
info=$(qemu-img info vms/plain.qcow2)
grep -q 'extended l2: false' <<<"$info" && grep -q '^cluster_size: 65536' <<<"$info" ||
    fail "--no-extended-l2 did not give plain 64k clusters"
ok vmc img clone --linked -q -o cluster_size=64k tmpl/base.qcow2 vms/o64.qcow2
qemu-img info vms/o64.qcow2 | grep -q '^cluster_size: 65536' || fail "-o cluster_size ignored"
ok vmc img clone --linked -q -o extended_l2=off tmpl/base.qcow2 vms/o-off.qcow2
qemu-img info vms/o-off.qcow2 | grep -q 'extended l2: false' || fail "-o extended_l2=off ignored"
qemu_check vms/plain.qcow2

# EEXIST, --force
expect_fail vmc img clone --linked -q tmpl/base.qcow2 vms/c.qcow2
err_matches "already exists"
qemu-io -f qcow2 -c 'read -P 0xc1 4k 4k' vms/c.qcow2 >/dev/null || fail "a refused clone touched the existing file"
ok vmc img clone --linked -q --force tmpl/base.qcow2 vms/c.qcow2
qemu-io -f qcow2 -c 'read -P 0xb1 4k 4k' vms/c.qcow2 >/dev/null || fail "--force did not replace the clone"
# a clone over its own base is refused even with --force
expect_fail vmc img clone --linked -q --force tmpl/base.qcow2 tmpl/base.qcow2
[ "$(sha tmpl/base.qcow2)" = "$bsum" ] || fail "the base changed"

# --count
mkdir many
ok vmc img clone --linked -q tmpl/base.qcow2 'many/vm%d.qcow2' --count 50
[ "$(ls many | wc -l)" = 50 ] || fail "--count 50 made $(ls many | wc -l) files"
for i in 1 17 50; do
    qemu_check many/vm$i.qcow2
    qemu-img compare -q many/vm$i.qcow2 tmpl/base.qcow2 || fail "many/vm$i differs from the base"
done
[ -e many/vm0.qcow2 ] && fail "numbering must start at 1"
ok vmc img clone --linked -q tmpl/base.qcow2 'many/z%03d.qcow2' --count 3
[ -e many/z003.qcow2 ] || fail "%03d not honoured"
expect_fail vmc img clone --linked -q tmpl/base.qcow2 'many/vm%d.qcow2' --count 60
err_matches "already exists"
[ -e many/vm51.qcow2 ] && fail "a refused --count created some clones"
expect_fail vmc img clone --linked -q tmpl/base.qcow2 'many/nopattern.qcow2' --count 2
expect_fail vmc img clone --linked -q tmpl/base.qcow2 'many/%d-%d.qcow2' --count 2
# raw base: format recorded
qemu-img convert -O raw tmpl/base.qcow2 tmpl/base.raw
ok vmc img clone --linked -q tmpl/base.raw vms/r.qcow2
qemu-img info vms/r.qcow2 | grep -q '^backing file format: raw' || fail "raw backing format not recorded"
qemu-img compare -q vms/r.qcow2 tmpl/base.raw || fail "clone of a raw base differs"
# JSON
out=$(vmc img clone --linked --json tmpl/base.qcow2 vms/j.qcow2) || fail "--json failed"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["clones"]==["vms/j.qcow2"] and d["extended-l2"]' "$out" ||
    fail "bad --json output: $out"
# errors: missing base, missing directory
expect_fail vmc img clone --linked -q tmpl/none.qcow2 vms/n.qcow2
expect_fail vmc img clone --linked -q tmpl/base.qcow2 nodir/n.qcow2
# no temporary files left anywhere
left=$(find . -name '.*.vmc-*')
[ -z "$left" ] || fail "temporary files left: $left"
note ok
