#!/bin/bash
# tests/rbd/fsck.sh - fsck cross-checks the catalog against the rbd
# children (rbd_list_children3) of what clones are made from (a template
# copy's vmclone-base, a VM snapshot): an RBD clone the catalog does not
# know is an inconsistency, reported by name and never removed (not even
# by --repair); a catalogued clone missing in Ceph is reported; a clone
# flattened behind the catalog's back gets its parent fixed (safe); once
# Ceph and the catalog agree again, fsck is clean.
. "$(dirname "$0")/rbd-lib.sh"

vmc pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    --kind primary -q || fail "pool add --type rbd: $(cat vmc.err)"
mk_template "$T/t.qcow2"
vmc template import tmpl "$T/t.qcow2" -q || fail "template import"
for v in vm1 vm2 vm3; do
    vmc clone tmpl --name $v --linked --pool ceph -q || fail "clone $v: $(cat vmc.err)"
done
vmc snapshot create vm1 s -q || fail "snapshot create: $(cat vmc.err)"
vmc clone vm1@s --name c1 --linked --pool ceph -q || fail "clone vm1@s: $(cat vmc.err)"
copy=$(rbd_ls | grep '^copy-tmpl')
img1=$(vm_image vm1)
fsck_clean

# clones the catalog does not know: reported by name, left in place
rbd -p "$CEPH_POOL" clone --rbd-default-clone-format 1 "$copy@vmclone-base" "$CEPH_POOL/stray" ||
    fail "rbd clone stray"
rbd -p "$CEPH_POOL" clone --rbd-default-clone-format 1 "$img1@vmclone-snap-s" "$CEPH_POOL/stray2" ||
    fail "rbd clone stray2"
vmc fsck --json > f1.json || true
[ "$(jget f1.json 'd["inconsistencies"]')" = 2 ] || fail "fsck with two stray clones: $(cat f1.json)"
grep -q "rbd image '$CEPH_POOL/stray' is a clone of it that the catalog does not know" f1.json ||
    fail "fsck does not name stray: $(cat f1.json)"
grep -q "$CEPH_POOL/stray2" f1.json || fail "fsck does not name stray2: $(cat f1.json)"
vmc fsck --repair -q > /dev/null || true
rbd_ls | grep -qx stray || fail "fsck --repair removed an image it did not create"
rbd_ls | grep -qx stray2 || fail "fsck --repair removed an image it did not create"

# a catalogued clone missing in Ceph
rbd -p "$CEPH_POOL" rm --no-progress "$(vm_image vm2)" >/dev/null 2>&1 || fail "rbd rm vm2's image"
vmc fsck --json > f2.json || true
grep -q "file of a ready volume is missing" f2.json || fail "fsck: vm2's image missing: $(cat f2.json)"
grep -q "the catalog's clone '$CEPH_POOL/$(vm_image vm2)' is not among its rbd children" f2.json ||
    fail "fsck: vm2 not among the children: $(cat f2.json)"

# a clone flattened behind the catalog's back: its parent is fixed
rbd -p "$CEPH_POOL" flatten --no-progress "$(vm_image vm3)" >/dev/null 2>&1 || fail "rbd flatten vm3"
vmc fsck --json > f3.json || true
grep -q "parent set from the file's backing reference" f3.json || fail "fsck: vm3's parent: $(cat f3.json)"
[ -z "$(sql "SELECT parent_id FROM volumes v JOIN vms m ON m.id = v.vm_id WHERE m.name = 'vm3' AND v.top = 1")" ] ||
    fail "vm3 still has a parent in the catalog"

# Ceph and the catalog agree again: clean
rbd -p "$CEPH_POOL" rm --no-progress stray >/dev/null 2>&1
rbd -p "$CEPH_POOL" rm --no-progress stray2 >/dev/null 2>&1
vmc rm vm2 -q || fail "rm vm2 (image gone): $(cat vmc.err)"
fsck_clean

# fsck --verify reads the template copy's vmclone-base through librbd and
# checks it against the seal: damage below RBD (a rewritten RADOS object)
# is found
vmc fsck --verify --json > v1.json || fail "fsck --verify: $(cat v1.json)"
[ "$(jget v1.json 'd["inconsistencies"]')" = 0 ] || fail "fsck --verify: $(cat v1.json)"
[ "$(rbd -p "$CEPH_POOL" image-meta get "$copy" vmclone.seal-chunk)" = 65536 ] ||
    fail "the copy has no seal chunk size in its metadata"
# librados is shut down before exit(), not from an atexit handler: when
# exit() starts destroying the libraries' static objects no librados
# thread runs (with the handler, some 18 did). Checked under gdb when it
# is installed; and fsck --verify runs 20 times cleanly. (The aborts once
# blamed on the exit, "terminate called after throwing an instance of
# 'std::system_error'", were librbd's open/close race: open-race.sh.)
if command -v gdb >/dev/null; then
    gdb -q -batch -ex 'set breakpoint pending on' -ex 'break exit' -ex run \
        -ex 'info threads' -ex cont --args "$VMCLONE" fsck --verify -q \
        > gdb.out 2>&1 || fail "gdb: $(tail -5 gdb.out)"
    grep -q 'hit Breakpoint 1, .*exit' gdb.out || fail "gdb: exit() not reached: $(tail -5 gdb.out)"
    threads=$(sed -n '/hit Breakpoint 1/,$p' gdb.out | grep -cE '^\*? +[0-9]+ +Thread ')
    [ "$threads" = 1 ] ||
        fail "$threads threads run when exit() starts: $(sed -n '/hit Breakpoint 1/,$p' gdb.out | grep Thread)"
else
    note "gdb not installed: the threads at exit are not checked"
fi
for i in $(seq 20); do
    rc=0
    "$VMCLONE" fsck --verify -q > loop.out 2> loop.err || rc=$?
    [ "$rc" = 0 ] && [ ! -s loop.err ] ||
        fail "fsck --verify run $i: exit $rc: $(cat loop.err)"
done

prefix=$(rbd -p "$CEPH_POOL" info "$copy" | awk '/block_name_prefix/ { print $2 }')
head -c 4096 /dev/urandom > junk
rados -p "$CEPH_POOL" put "$prefix.0000000000000000" junk || fail "rados put"
vmc fsck --verify --json > v2.json || true
grep -q "its data does not match the seal" v2.json || fail "fsck --verify missed the damage: $(cat v2.json)"

