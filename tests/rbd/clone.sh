#!/bin/bash
# tests/rbd/clone.sh - rbd pools on a throwaway Ceph cluster
# (tests/helpers/ceph.sh): pool add --type rbd, a template copied into the
# pool once (import + protected snapshot vmclone-base), linked clones as
# RBD clones ('rbd children' agrees with 'vm-clone deps'), QEMU's rbd
# driver reads each clone as the template plus its own writes, rm and
# template rm/retire protection (watchers, dependents), and a template
# that goes away with its last clone.
. "$(dirname "$0")/rbd-lib.sh"

vmc pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    --kind primary || fail "pool add --type rbd: $(cat vmc.err)"
vmc pool list --json > pl.json || fail "pool list --json"
[ "$(jget pl.json '[p["type"] for p in d if p["name"] == "ceph"][0]')" = rbd ] ||
    fail "pool list: ceph is not type rbd: $(cat pl.json)"
expect_rc 2 vmc pool add bad2 --type rbd "$T/dir" --rbd-pool "$CEPH_POOL"
expect_rc 3 vmc pool add bad3 --type rbd --rbd-pool nosuchpool --conf "$CEPH_CONF"
expect_rc 1 vmc pool add bad4 "$T/dir" --rbd-pool x

mk_template "$T/t.qcow2"
vmc template import tmpl "$T/t.qcow2" || fail "template import"

# linked clones: the first copies the template into the pool, once
for i in 1 2 3; do
    vmc clone tmpl --name "vm$i" --linked --pool ceph --json > "c$i.json" ||
        fail "clone vm$i: $(cat vmc.err)"
done
[ "$(jget c1.json 'd["template_copy"]["made"]')" = True ] || fail "vm1 did not copy the template"
[ "$(jget c2.json 'd["template_copy"]["made"]')" = False ] || fail "vm2 copied the template again"
copies=$(rbd_ls | grep -c '^copy-tmpl')
[ "$copies" = 1 ] || fail "$copies template copies in rbd, not 1"
copy=$(rbd_ls | grep '^copy-tmpl')
rbd -p "$CEPH_POOL" info "$copy@vmclone-base" | grep -q 'protected: True' ||
    fail "the template copy's vmclone-base is not protected"
[ "$(rbd -p "$CEPH_POOL" image-meta get "$copy" vmclone.seal)" = \
  "$(sql "SELECT seal FROM volumes WHERE template_id IS NOT NULL")" ] ||
    fail "the copy's vmclone.seal is not the template's seal"

# rbd children agrees with vm-clone deps
children_agree tmpl "$copy"

# QEMU reads each clone as the template plus its own writes
for i in 1 2 3; do
    img=$(vm_image "vm$i")
    qemu-io -f raw -c "write -P 0x1$i $((i * 1024))k 64k" "$(qemu_rbd "$img")" \
        >/dev/null || fail "qemu-io write into vm$i"
done
for i in 1 2 3; do
    cp "$T/t.qcow2" "$T/want$i.qcow2"
    qemu-io -f qcow2 -c "write -P 0x1$i $((i * 1024))k 64k" "$T/want$i.qcow2" >/dev/null
    qemu-img compare -q -f qcow2 -F raw "$T/want$i.qcow2" "$(qemu_rbd "$(vm_image "vm$i")")" ||
        fail "vm$i does not read as the template plus its writes"
done
qemu-img compare -q -f qcow2 -F raw "$T/t.qcow2" "$(qemu_rbd "$copy")" ||
    fail "the template copy changed"

# vm qemu-cmd and vm xml give QEMU (and libvirt) an rbd drive
vmc vm qemu-cmd vm2 > qc.txt || fail "vm qemu-cmd: $(cat vmc.err)"
drive=$(grep -o 'file=rbd:[^ ]*' qc.txt | sed 's/^file=//; s/,format=.*//; s/,,/,/g')
[ "$drive" = "$(qemu_rbd "$(vm_image vm2)")" ] || fail "qemu-cmd drive '$drive': $(cat qc.txt)"
grep -q 'format=raw' qc.txt || fail "qemu-cmd: the rbd drive is not raw: $(cat qc.txt)"
qemu-img compare -q -f qcow2 -F raw "$T/want2.qcow2" "$drive" ||
    fail "QEMU does not read vm2 through the qemu-cmd drive"
vmc vm xml vm2 > vm2.xml || fail "vm xml: $(cat vmc.err)"
grep -q "protocol='rbd' name='$CEPH_POOL/$(vm_image vm2)'" vm2.xml ||
    fail "vm xml: no rbd disk: $(cat vm2.xml)"
grep -q "<config file='$CEPH_CONF'/>" vm2.xml || fail "vm xml: no ceph.conf: $(cat vm2.xml)"
if command -v virt-xml-validate >/dev/null; then
    virt-xml-validate vm2.xml domain >/dev/null || fail "vm xml: not a valid domain"
fi

# rm refuses while a client has the image open (an RBD watcher)
img1=$(vm_image vm1)
# (qemu-io reads its commands from a FIFO: closing it ends qemu-io, which
# closes the image and drops its watch)
mkfifo "$T/hold"
qemu-io -f raw "$(qemu_rbd "$img1")" < "$T/hold" >/dev/null 2>&1 &
holder=$!
exec 7> "$T/hold"
cleanup_fn kill "$holder"
for _ in $(seq 100); do
    rbd -p "$CEPH_POOL" status "$img1" | grep -q watcher= && break
    sleep 0.1
done
expect_rc 5 vmc rm vm1
grep -q "in use" vmc.err || fail "rm of a watched VM: $(cat vmc.err)"
exec 7>&-
wait "$holder" 2>/dev/null
vmc rm vm1 || fail "rm vm1 after its client closed: $(cat vmc.err)"
rbd_ls | grep -q "^$img1\$" && fail "rm vm1 left its image"

# template rm refuses while clones depend on it; retire waits for them
expect_rc 4 vmc template rm tmpl
vmc template retire tmpl || fail "template retire"
rbd_ls | grep -q "^$copy\$" || fail "retire removed the copy under its clones"
vmc rm vm2 || fail "rm vm2"
vmc rm vm3 || fail "rm vm3"
[ -z "$(vmc template list -q --json | grep tmpl)" ] || fail "retired template still listed"
[ -z "$(rbd_ls)" ] || fail "images left in the pool: $(rbd_ls)"
vmc fsck -q || fail "fsck: $(cat vmc.err)"
