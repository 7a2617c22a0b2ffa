#!/bin/bash
# tests/rbd/flatten.sh - rbd pools, the rest of a VM's life: flatten
# (rbd_flatten: the VM no longer depends on the template copy), full
# clones into the rbd pool (rbd_copy3 / an import) and out of it into a
# directory pool (a qcow2 file), operations with no RBD equivalent refused
# with "not supported on rbd pools" (exit 1), fsck and fsck --verify
# (the seal in the copy's image metadata) with rbd volumes present.
. "$(dirname "$0")/rbd-lib.sh"

vmc pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" ||
    fail "pool add --type rbd: $(cat vmc.err)"
mk_template "$T/t.qcow2"
vmc template import tmpl "$T/t.qcow2" || fail "template import"
vmc clone tmpl --name vm1 --linked --pool ceph || fail "clone vm1: $(cat vmc.err)"
vmc clone tmpl --name vm2 --linked --pool ceph || fail "clone vm2: $(cat vmc.err)"
copy=$(rbd_ls | grep '^copy-tmpl')
qemu-io -f raw -c 'write -P 0x77 2M 64k' "$(qemu_rbd "$(vm_image vm1)")" >/dev/null ||
    fail "qemu-io write into vm1"
cp "$T/t.qcow2" "$T/want.qcow2"
qemu-io -f qcow2 -c 'write -P 0x77 2M 64k' "$T/want.qcow2" >/dev/null

vmc fsck -q || fail "fsck with rbd volumes: $(cat vmc.err)"
vmc fsck -q --verify || fail "fsck --verify with rbd volumes: $(cat vmc.err)"

# no RBD equivalent: refused, named, exit 1
expect_rc 1 vmc consolidate vm1
grep -q 'not supported on rbd pools' vmc.err || fail "consolidate: $(cat vmc.err)"
expect_rc 1 vmc relink vm1 --template tmpl
grep -q 'not supported on rbd pools' vmc.err || fail "relink: $(cat vmc.err)"

# flatten: no parent any more, same data, no longer a dependent
vmc flatten vm1 || fail "flatten vm1: $(cat vmc.err)"
rbd -p "$CEPH_POOL" info "$(vm_image vm1)" | grep -q parent: &&
    fail "vm1 still has an rbd parent after flatten"
[ -z "$(sql "SELECT parent_id FROM volumes v JOIN vms m ON m.id = v.vm_id WHERE m.name = 'vm1'")" ] ||
    fail "vm1's volume still has a parent row"
qemu-img compare -q -f qcow2 -F raw "$T/want.qcow2" "$(qemu_rbd "$(vm_image vm1)")" ||
    fail "vm1 changed by flatten"
children_agree tmpl "$copy"

# full clones: inside the cluster, and out of it into a directory pool
vmc clone vm1 --name full1 --full --pool ceph || fail "full clone in rbd: $(cat vmc.err)"
rbd -p "$CEPH_POOL" info "$(vm_image full1)" | grep -q parent: && fail "full1 has a parent"
qemu-img compare -q -f qcow2 -F raw "$T/want.qcow2" "$(qemu_rbd "$(vm_image full1)")" ||
    fail "full1 differs from vm1"
vmc clone vm2 --name dirvm --full --pool primary || fail "full clone into dir: $(cat vmc.err)"
f=$(sql "SELECT p.path || '/' || v.file FROM volumes v JOIN pools p ON p.id = v.pool_id JOIN vms m ON m.id = v.vm_id WHERE m.name = 'dirvm'")
[ -f "$f" ] || fail "dirvm has no file ($f)"
qemu-img check -q "$f" || fail "dirvm's qcow2 fails check"
qemu-img compare -q "$T/t.qcow2" "$f" || fail "dirvm differs from the template"
vmc clone tmpl --name full2 --full --pool ceph || fail "full clone of tmpl in rbd: $(cat vmc.err)"
qemu-img compare -q -f qcow2 -F raw "$T/t.qcow2" "$(qemu_rbd "$(vm_image full2)")" ||
    fail "full2 differs from the template"

# fsck --verify reads the seal from the copy's metadata: a changed one is found
rbd -p "$CEPH_POOL" image-meta set "$copy" vmclone.seal sha256:0000 >/dev/null
expect_rc 6 vmc fsck --verify
vmc fsck --verify > fsck.out 2>&1
grep -q 'seal verification failed' fsck.out ||
    fail "fsck --verify did not report the changed seal: $(cat fsck.out)"
rbd -p "$CEPH_POOL" image-meta set "$copy" vmclone.seal \
    "$(sql "SELECT seal FROM volumes WHERE template_id IS NOT NULL")" >/dev/null
vmc fsck -q --verify || fail "fsck --verify after the seal came back: $(cat vmc.err)"

for v in vm1 vm2 full1 full2 dirvm; do vmc rm "$v" || fail "rm $v: $(cat vmc.err)"; done
vmc template rm tmpl || fail "template rm: $(cat vmc.err)"
[ -z "$(rbd_ls)" ] || fail "images left in the pool: $(rbd_ls)"
