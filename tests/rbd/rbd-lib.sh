# tests/rbd/rbd-lib.sh - the preamble of the rbd tests: cat-lib.sh (a
# store of its own, on PostgreSQL under tests/catalog-pg's runner) and a
# throwaway Ceph cluster (tests/helpers/ceph.sh; SKIP when vm-clone was
# built without librbd or Ceph cannot be had), plus helpers.
. "$(dirname "${BASH_SOURCE[0]}")/../catalog/cat-lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../helpers/ceph.sh"
if ! vmc pool add probe --type rbd --rbd-pool none --conf /nonexistent &&
   grep -q 'built without librbd' vmc.err; then
    skip "vm-clone was built without librbd (scripts/install-deps.sh installs librbd-dev librados-dev)"
fi
ceph_start
note "ceph ready in ${CEPH_START_MS} ms ($CEPH_DIR)"

# rbd_ls: the images of the test pool
rbd_ls() { rbd -p "$CEPH_POOL" ls; }

# qemu_rbd IMAGE: QEMU's filename of IMAGE in the test pool
qemu_rbd() { echo "rbd:$CEPH_POOL/$1:conf=$CEPH_CONF"; }

# vm_image VM: the rbd image of VM's disk 0
vm_image() {
    sql "SELECT v.file FROM volumes v JOIN vms m ON m.id = v.vm_id WHERE m.name = '$1' AND v.top = 1 AND v.disk = 0"
}

# children_agree TEMPLATE COPY: 'rbd children' of COPY@vmclone-base names
# the same VMs as 'vm-clone deps TEMPLATE'
children_agree() {
    local kids deps
    kids=$(rbd -p "$CEPH_POOL" children "$2@vmclone-base" | sed 's|.*/||; s/-disk0-.*//' | sort)
    deps=$(vmc deps "$1" | awk '$1 == "vm" { print $2 }' | sort)
    [ -n "$deps" ] || fail "deps $1 lists no VM"
    [ "$kids" = "$deps" ] || fail "rbd children ($kids) != deps ($deps)"
}
