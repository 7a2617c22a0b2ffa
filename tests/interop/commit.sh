#!/bin/bash
# commit: `vm-clone img commit` (default, -d, -b) produces the same base as
# `qemu-img commit` on an identical copy of the chain, leaves every image
# check-clean, keeps the top's guest view, and empties the top unless -d.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

qio() { qemu-io -f qcow2 "$@" >/dev/null || fail "qemu-io $* failed"; }

mkchain() {
    rm -rf "$1"; mkdir "$1"
    ( cd "$1"
      qemu-img create -q -f qcow2 b.qcow2 8M
      qemu-io -f qcow2 -c 'write -P 0xb0 0 8M' b.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 m.qcow2 12M
      qemu-io -f qcow2 -c 'write -P 0xc0 1M 1M' -c 'write -z 3M 256k' -c 'write -P 0xc1 10M 64k' m.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 t.qcow2
      qemu-io -f qcow2 -c 'write -P 0xd0 1500k 1000' -c 'write -z 5M 128k' -c 'write -z -u 0 64k' \
          -c 'write -P 0xd1 11M 3000' t.qcow2 >/dev/null )
}

# 1. default: into the immediate backing, then empty the top
mkchain ours; mkchain ref
raw_of ours/t.qcow2 view.raw
bsum=$(sha ours/b.qcow2)
out=$(vmc img commit -f qcow2 ours/t.qcow2) || fail "vm-clone img commit failed"
[ "$out" = "Image committed." ] || fail "commit printed '$out'"
qemu-img commit -q -f qcow2 ref/t.qcow2
for f in t m; do qemu_check ours/$f.qcow2; done
qemu_same ours/m.qcow2 ref/m.qcow2 qcow2 qcow2
qemu_same ours/t.qcow2 view.raw
[ "$(sha ours/b.qcow2)" = "$bsum" ] || fail "commit into m modified b"
# the top defines nothing any more
qemu-img map -f qcow2 --output=json ours/t.qcow2 | map_filter | awk '$3 == 0 && $4 == "true" { bad = 1 } END { exit bad }' ||
    fail "the top still defines data after commit"
# a zero cluster of the top became a zero in m (base data must not return)
qemu-io -f qcow2 -c 'read -P 0 5M 128k' -c 'read -P 0 0 64k' ours/m.qcow2 >/dev/null ||
    fail "zeroes of the top were not committed as zeroes"

# 2. -d: the top keeps its data
mkchain ours; mkchain ref
qemu-img map -f qcow2 --output=json ours/t.qcow2 | map_filter > before.map
ok vmc img commit -d -f qcow2 ours/t.qcow2 > /dev/null
qemu-img commit -q -d -f qcow2 ref/t.qcow2
qemu_check ours/t.qcow2; qemu_check ours/m.qcow2
qemu_same ours/m.qcow2 ref/m.qcow2 qcow2 qcow2
qemu-img map -f qcow2 --output=json ours/t.qcow2 | map_filter > after.map
diff -u before.map after.map >&2 || fail "commit -d changed the top"

# 3. -b: into a deeper base (implies -d); the top still reads the same
mkchain ours; mkchain ref
raw_of ours/t.qcow2 view.raw
ok vmc img commit -b b.qcow2 -f qcow2 ours/t.qcow2 > /dev/null
qemu-img commit -q -b b.qcow2 -f qcow2 ref/t.qcow2
for f in t m b; do qemu_check ours/$f.qcow2; done
qemu_same ours/b.qcow2 ref/b.qcow2 qcow2 qcow2
qemu_same ours/t.qcow2 view.raw

# 4. a top bigger than its base grows the base
rm -rf g; mkdir g
qemu-img create -q -f qcow2 g/b.qcow2 1M
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 g/t.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0xe0 3M 64k' g/t.qcow2 >/dev/null
ok vmc img commit -f qcow2 g/t.qcow2 > /dev/null
qemu_check g/b.qcow2
[ "$(qemu-img info -f qcow2 --output=json g/b.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" -ge $((4 << 20)) ] ||
    fail "commit did not grow the smaller base"
qemu-io -f qcow2 -c 'read -P 0xe0 3M 64k' g/b.qcow2 >/dev/null || fail "committed data missing in the grown base"

# errors: no backing file; -b naming something not in the chain
qemu-img create -q -f qcow2 lone.qcow2 1M
expect_fail vmc img commit -f qcow2 lone.qcow2
mkchain ours
expect_fail vmc img commit -b lone.qcow2 -f qcow2 ours/t.qcow2
note "ok"
