#!/bin/bash
# tests/rbd/snapshot.sh - VM snapshots in rbd pools are RBD snapshots:
# 'snapshot create' takes a protected RBD snapshot of the VM's image (no
# new layer), a linked clone of VM@SNAP is an RBD clone of that snapshot
# (a full clone an rbd_copy3 of it) and reads the VM as it was then;
# 'snapshot rm' is refused while clones use the snapshot and afterwards
# unprotects and removes it; 'snapshot revert' rolls the image back to
# the RBD snapshot in place (rbd_snap_rollback: data written since is
# gone, the snapshots and their clones are untouched), refused while a
# client has the image open; rm of the VM takes its snapshots along.
# fsck agrees with Ceph all along.
. "$(dirname "$0")/rbd-lib.sh"

vmc pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    --kind primary || fail "pool add --type rbd: $(cat vmc.err)"
mk_template "$T/t.qcow2"
vmc template import tmpl "$T/t.qcow2" || fail "template import"
vmc clone tmpl --name vm --linked --pool ceph -q || fail "clone vm: $(cat vmc.err)"
img=$(vm_image vm)
copy=$(rbd_ls | grep '^copy-tmpl')

# the VM's state at the snapshot: the template plus one write
qemu-io -f raw -c 'write -P 0x31 2M 64k' "$(qemu_rbd "$img")" >/dev/null ||
    fail "qemu-io write into vm"
cp "$T/t.qcow2" "$T/at-s1.qcow2"
qemu-io -f qcow2 -c 'write -P 0x31 2M 64k' "$T/at-s1.qcow2" >/dev/null

vmc snapshot create vm s1 || fail "snapshot create on rbd: $(cat vmc.err)"
rbd -p "$CEPH_POOL" snap ls "$img" | grep -q 'vmclone-snap-s1' ||
    fail "no RBD snapshot vmclone-snap-s1: $(rbd -p "$CEPH_POOL" snap ls "$img")"
rbd -p "$CEPH_POOL" info "$img@vmclone-snap-s1" | grep -q 'protected: True' ||
    fail "the RBD snapshot is not protected"
[ "$(rbd_ls | wc -l)" = 2 ] || fail "snapshot create made an image: $(rbd_ls)"
[ "$(vm_image vm)" = "$img" ] || fail "the VM's disk changed: $(vm_image vm)"
vmc snapshot list vm > sl.txt || fail "snapshot list: $(cat vmc.err)"
grep -q s1 sl.txt || fail "snapshot list: $(cat sl.txt)"
expect_rc 4 vmc snapshot create vm s1
fsck_clean

# the VM goes on; the snapshot keeps its data
qemu-io -f raw -c 'write -P 0x32 2M 64k' -c 'write -P 0x33 4M 64k' \
    "$(qemu_rbd "$img")" >/dev/null || fail "qemu-io write after the snapshot"
qemu-img compare -q -f qcow2 -F raw "$T/at-s1.qcow2" \
    "rbd:$CEPH_POOL/$img@vmclone-snap-s1:conf=$CEPH_CONF" ||
    fail "the RBD snapshot does not read as the VM did at 'snapshot create'"

# clones of VM@s1: linked = RBD clone of the snapshot, full = rbd_copy3
vmc clone vm@s1 --name ls1 --linked --pool ceph -q || fail "linked clone of vm@s1: $(cat vmc.err)"
vmc clone vm@s1 --name fs1 --full --pool ceph -q || fail "full clone of vm@s1: $(cat vmc.err)"
kids=$(rbd -p "$CEPH_POOL" children "$img@vmclone-snap-s1")
[ "$kids" = "$CEPH_POOL/$(vm_image ls1)" ] || fail "rbd children of vm@s1: '$kids'"
rbd -p "$CEPH_POOL" info "$(vm_image fs1)" | grep -q parent: &&
    fail "the full clone of vm@s1 has a parent"
for v in ls1 fs1; do
    qemu-img compare -q -f qcow2 -F raw "$T/at-s1.qcow2" "$(qemu_rbd "$(vm_image $v)")" ||
        fail "$v does not read as vm@s1"
done
vmc deps vm > deps.txt || fail "deps vm: $(cat vmc.err)"
grep -q ls1 deps.txt || fail "deps vm does not list ls1: $(cat deps.txt)"
fsck_clean

# rm of the snapshot is refused while ls1 uses it
expect_rc 4 vmc snapshot rm vm s1
grep -q ls1 vmc.err || fail "snapshot rm refusal does not name ls1: $(cat vmc.err)"
rbd -p "$CEPH_POOL" snap ls "$img" | grep -q vmclone-snap-s1 ||
    fail "the refused snapshot rm removed the RBD snapshot"
expect_rc 4 vmc rm vm

# revert: a later snapshot s2 with a clone ls2, then a write after it
vmc snapshot create vm s2 || fail "snapshot create s2: $(cat vmc.err)"
vmc clone vm@s2 --name ls2 --linked --pool ceph -q || fail "linked clone of vm@s2: $(cat vmc.err)"
cp "$T/at-s1.qcow2" "$T/at-s2.qcow2"
qemu-io -f qcow2 -c 'write -P 0x32 2M 64k' -c 'write -P 0x33 4M 64k' \
    "$T/at-s2.qcow2" >/dev/null
qemu-io -f raw -c 'write -P 0x34 6M 64k' "$(qemu_rbd "$img")" >/dev/null ||
    fail "qemu-io write after s2"
# refused while a client (a running VM) has the image open
mkfifo "$T/hold"
qemu-io -f raw "$(qemu_rbd "$img")" < "$T/hold" >/dev/null 2>&1 &
holder=$!
exec 7> "$T/hold"
cleanup_fn kill "$holder"
for _ in $(seq 100); do
    rbd -p "$CEPH_POOL" status "$img" | grep -q watcher= && break
    sleep 0.1
done
expect_rc 5 vmc snapshot revert vm s1
grep -q "in use" vmc.err || fail "revert of a watched VM: $(cat vmc.err)"
exec 7>&-
wait "$holder" 2>/dev/null
qemu-io -f raw -c 'read -P 0x34 6M 64k' "$(qemu_rbd "$img")" | grep -q 'read 65536' ||
    fail "the refused revert changed the image"
expect_rc 3 vmc snapshot revert vm nosuch
# --dry-run: each disk's image would be rolled back in place
vmc snapshot revert vm s1 --dry-run > dry.txt || fail "revert --dry-run: $(cat vmc.err)"
grep -q "roll back disk 0 (rbd image .*/$img) to .*/$img@vmclone-snap-s1" dry.txt ||
    fail "revert --dry-run on rbd: $(cat dry.txt)"
vmc snapshot revert vm s1 --dry-run --json > dry.json || fail "revert --dry-run --json: $(cat vmc.err)"
[ "$(jget dry.json 'len(d["would_roll_back"]), d["would_create"], d["would_discard"]')" = "(1, [], [])" ] ||
    fail "revert --dry-run --json on rbd: $(cat dry.json)"
if /usr/bin/python3 -c 'import jsonschema' 2>/dev/null; then
    printf 'snapshot-revert-dry-run\t0\t0\t%s\t%s\n' "$T/dry.json" "snapshot revert --dry-run --json" > manifest
    # (the validator also lists every schema no command here used)
    /usr/bin/python3 "$TESTS_DIR/cli/json-validate.py" "$TESTS_DIR/../docs/schema" manifest \
        > validate.out 2>&1 || true
    grep '^FAIL' validate.out | grep -v 'is checked by no command' > validate.bad || true
    ! [ -s validate.bad ] && grep -q '^1 documents checked' validate.out ||
        fail "revert --dry-run --json on rbd does not follow its schema: $(cat validate.bad validate.out | head -5)"
fi
qemu-io -f raw -c 'read -P 0x34 6M 64k' "$(qemu_rbd "$img")" | grep -q 'read 65536' ||
    fail "revert --dry-run changed the image"
# the image reads as at s1 again (through QEMU's rbd driver and rbd export)
vmc snapshot revert vm s1 || fail "snapshot revert on rbd: $(cat vmc.err)"
qemu-img compare -q -f qcow2 -F raw "$T/at-s1.qcow2" "$(qemu_rbd "$img")" ||
    fail "after revert the VM does not read as at s1"
rbd -p "$CEPH_POOL" export --no-progress "$img" "$T/after.raw" >/dev/null 2>&1 ||
    fail "rbd export"
qemu-img compare -q -f qcow2 -F raw "$T/at-s1.qcow2" "$T/after.raw" ||
    fail "rbd export after revert differs from the VM at s1"
[ "$(vm_image vm)" = "$img" ] || fail "revert changed the VM's disk: $(vm_image vm)"
[ "$(rbd_ls | grep -c "^$img\$")" = 1 ] || fail "revert made or lost images: $(rbd_ls)"
# the snapshots and their clones are untouched
[ "$(rbd -p "$CEPH_POOL" snap ls "$img" | grep -c vmclone-snap-)" = 2 ] ||
    fail "snapshots after revert: $(rbd -p "$CEPH_POOL" snap ls "$img")"
qemu-img compare -q -f qcow2 -F raw "$T/at-s2.qcow2" \
    "rbd:$CEPH_POOL/$img@vmclone-snap-s2:conf=$CEPH_CONF" || fail "revert changed snapshot s2"
qemu-img compare -q -f qcow2 -F raw "$T/at-s1.qcow2" "$(qemu_rbd "$(vm_image ls1)")" ||
    fail "revert changed ls1, a clone of vm@s1"
qemu-img compare -q -f qcow2 -F raw "$T/at-s2.qcow2" "$(qemu_rbd "$(vm_image ls2)")" ||
    fail "revert changed ls2, a clone of vm@s2"
[ "$(sql "SELECT state FROM journal WHERE op = 'revert' ORDER BY id DESC LIMIT 1")" = done ] ||
    fail "revert journal: $(sql "SELECT op, state FROM journal WHERE op = 'revert'")"
fsck_clean
# revert to the later snapshot: its data is back
vmc snapshot revert vm@s2 -q || fail "snapshot revert vm@s2: $(cat vmc.err)"
qemu-img compare -q -f qcow2 -F raw "$T/at-s2.qcow2" "$(qemu_rbd "$img")" ||
    fail "after revert to s2 the VM does not read as at s2"
vmc rm ls2 -q || fail "rm ls2: $(cat vmc.err)"
vmc snapshot rm vm s2 -q || fail "snapshot rm s2: $(cat vmc.err)"

# without its clone, snapshot rm unprotects and removes it
vmc rm ls1 || fail "rm ls1: $(cat vmc.err)"
vmc snapshot rm vm s1 || fail "snapshot rm: $(cat vmc.err)"
[ -z "$(rbd -p "$CEPH_POOL" snap ls "$img")" ] ||
    fail "RBD snapshots left: $(rbd -p "$CEPH_POOL" snap ls "$img")"
[ "$(sql "SELECT count(*) FROM snapshots")" = 0 ] || fail "snapshot row left"
qemu-img compare -q -f qcow2 -F raw "$T/at-s2.qcow2" "$(qemu_rbd "$img")" ||
    fail "the VM lost its data"
fsck_clean

# rm of a VM with snapshots removes them with the image
vmc snapshot create vm s2 || fail "snapshot create s2: $(cat vmc.err)"
vmc snapshot create vm s3 || fail "snapshot create s3: $(cat vmc.err)"
[ "$(rbd -p "$CEPH_POOL" snap ls "$img" | grep -c vmclone-snap-)" = 2 ] ||
    fail "two snapshots: $(rbd -p "$CEPH_POOL" snap ls "$img")"
vmc rm vm || fail "rm vm with snapshots: $(cat vmc.err)"
vmc rm fs1 || fail "rm fs1"
rbd_ls | grep -q "^$img\$" && fail "rm vm left its image"
[ "$(rbd_ls)" = "$copy" ] || fail "images left: $(rbd_ls)"
fsck_clean
