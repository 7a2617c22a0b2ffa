#!/bin/bash
# rebase: safe mode keeps the guest view while the backing changes (and
# the old backing is really no longer needed), -u only rewrites the
# header, -b "" flattens in place; results are check-clean and equal to
# what qemu-img rebase produces.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

jget() { qemu-img info -f qcow2 --output=json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$2"; }

mkchain() {
    rm -rf "$1"; mkdir "$1"
    ( cd "$1"
      qemu-img create -q -f qcow2 b.qcow2 8M
      qemu-io -f qcow2 -c 'write -P 0xb0 0 6M' b.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 m.qcow2
      qemu-io -f qcow2 -c 'write -P 0xc0 1M 1M' -c 'write -z 3M 256k' -c 'write -P 0xc1 7M 64k' m.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 t.qcow2
      qemu-io -f qcow2 -c 'write -P 0xd0 1500k 1000' -c 'write -z 5M 128k' t.qcow2 >/dev/null
      # another base with different content
      qemu-img create -q -f qcow2 n.qcow2 8M
      qemu-io -f qcow2 -c 'write -P 0x4e 2M 4M' n.qcow2 >/dev/null )
}

# 1. safe rebase onto the grandparent: m's data must move into t
mkchain ours; mkchain ref
raw_of ours/t.qcow2 view.raw
ok vmc img rebase -f qcow2 -b b.qcow2 -F qcow2 ours/t.qcow2
qemu-img rebase -f qcow2 -b b.qcow2 -F qcow2 ref/t.qcow2
qemu_check ours/t.qcow2
[ "$(jget ours/t.qcow2 backing-filename)" = b.qcow2 ] || fail "backing not changed to b.qcow2"
[ "$(jget ours/t.qcow2 backing-filename-format)" = qcow2 ] || fail "backing format not recorded"
rm ours/m.qcow2                        # no longer part of the chain
qemu_same ours/t.qcow2 view.raw
qemu_same ours/t.qcow2 ref/t.qcow2 qcow2 qcow2

# 2. safe rebase onto an unrelated base: differences are copied in
mkchain ours
raw_of ours/t.qcow2 view.raw
ok vmc img rebase -f qcow2 -b n.qcow2 -F qcow2 ours/t.qcow2
qemu_check ours/t.qcow2
mv ours/m.qcow2 ours/m.gone; mv ours/b.qcow2 ours/b.gone
qemu_same ours/t.qcow2 view.raw

# 3. -u: header only; onto a byte copy of the old backing the view holds
mkchain ours
raw_of ours/t.qcow2 view.raw
cp ours/m.qcow2 ours/m2.qcow2
tsum_map=$(qemu-img map -f qcow2 --output=json ours/t.qcow2 | map_filter | awk '$3==0')
ok vmc img rebase -u -f qcow2 -b m2.qcow2 -F qcow2 ours/t.qcow2
qemu_check ours/t.qcow2
[ "$(jget ours/t.qcow2 backing-filename)" = m2.qcow2 ] || fail "-u did not rewrite the backing name"
[ "$(qemu-img map -f qcow2 --output=json ours/t.qcow2 | map_filter | awk '$3==0')" = "$tsum_map" ] ||
    fail "rebase -u changed the top layer's data"
qemu_same ours/t.qcow2 view.raw
# -u does not need the new backing to exist
ok vmc img rebase -u -f qcow2 -b nowhere.qcow2 -F qcow2 ours/t.qcow2
[ "$(jget ours/t.qcow2 backing-filename)" = nowhere.qcow2 ] || fail "-u onto a missing file failed"

# 4. -b "": flatten in place
mkchain ours
raw_of ours/t.qcow2 view.raw
ok vmc img rebase -f qcow2 -b "" ours/t.qcow2
qemu_check ours/t.qcow2
[ -z "$(jget ours/t.qcow2 backing-filename)" ] || fail "flattened image still has a backing file"
rm ours/m.qcow2 ours/b.qcow2
qemu_same ours/t.qcow2 view.raw

# a base and a modified copy of it sharing no file, with differences at
# odd offsets (within clusters, across them, zeroed runs), cluster sizes
# that differ between the layers, and an overlay with writes of its own:
# rebasing from one onto the other keeps the view, in both directions.
mkdir cp
( cd cp
  qemu-img create -q -f qcow2 -o cluster_size=65536 b1.qcow2 8M
  qemu-io -f qcow2 -c 'write -P 0x31 0 5M' -c 'write -P 0x32 6M 512k' b1.qcow2 >/dev/null
  cp b1.qcow2 b2.qcow2
  qemu-io -f qcow2 -c 'write -P 0x41 70000 3000' -c 'write -z 1M 100k' \
      -c 'write -P 0x42 4190000 300000' -c 'write -P 0x43 7M 1000' -c 'discard 6M 64k' b2.qcow2 >/dev/null
  qemu-img create -q -f qcow2 -o cluster_size=4096 -b b1.qcow2 -F qcow2 o.qcow2
  qemu-io -f qcow2 -c 'write -P 0x51 68k 8k' -c 'write -P 0x52 4100000 4096' o.qcow2 >/dev/null )
raw_of cp/o.qcow2 cp-view.raw
ok vmc img rebase -f qcow2 -b b2.qcow2 -F qcow2 cp/o.qcow2
qemu_check cp/o.qcow2
qemu_same cp/o.qcow2 cp-view.raw
ok vmc img rebase -f qcow2 -b b1.qcow2 -F qcow2 cp/o.qcow2
qemu_check cp/o.qcow2
qemu_same cp/o.qcow2 cp-view.raw
rm cp/b2.qcow2
qemu_same cp/o.qcow2 cp-view.raw

# errors: -F is mandatory with -b (as in qemu-img 7.2); the new backing
# must exist in safe mode; the image is left untouched on failure.
# (Stricter than QEMU: qemu-img 7.2 copies the data into the image first
# and only then refuses the missing -F, so with VMCLONE=qemu-shim.sh the
# sha check below fails.)
mkchain ours
s=$(sha ours/t.qcow2)
expect_fail vmc img rebase -f qcow2 -b b.qcow2 ours/t.qcow2
expect_fail vmc img rebase -f qcow2 -b missing.qcow2 -F qcow2 ours/t.qcow2
[ "$(sha ours/t.qcow2)" = "$s" ] || fail "a failed rebase modified the image"
note "ok"
