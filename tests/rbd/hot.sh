#!/bin/bash
# tests/rbd/hot.sh - a hot template in an rbd pool gets several base copies
# (issue 11, docs/design/scale-out.md). Three "hosts" (stores with their own
# --host-id) share one PostgreSQL catalog (tests/helpers/pg.sh) and one rbd
# pool (tests/helpers/ceph.sh) with --max-clones-per-base 3. 10 linked
# clones started at once from the three hosts make exactly ceil(10/3) = 4
# copies, each its own image with its own protected vmclone-base snapshot
# and at most 3 RBD children ('rbd children', Ceph's own count); the
# copies after the first are made from it inside Ceph, by whichever host
# found them full (the template's files are local to host1). 'rbd
# children' agrees with 'vm-clone deps'; each clone reads as the template
# (qemu-img over rbd:); fsck (which lists each copy's RBD children) is
# clean; template rm refuses while clones exist; gc removes an extra copy
# no clone uses, image and all, and keeps the others.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version
. "$(dirname "$0")/../helpers/pg.sh"
. "$(dirname "$0")/../helpers/ceph.sh"
pg_start
cleanup_fn pg_stop      # pg.sh's own trap replaced lib.sh's: put it back
trap _on_exit EXIT
ceph_start
note "PostgreSQL ready in ${PG_START_MS} ms, Ceph in ${CEPH_START_MS} ms"
pg_createdb vmc

hv() {  # hv N ARGS...: vm-clone on host N's store
    local h=$1; shift
    "$VMCLONE" --home "$T/h$h" "$@"
}
psql_q() { psql "$PG_CONNINFO dbname=vmc" -AtqX -c "$1"; }
rbd_p() { rbd -p "$CEPH_POOL" "$@"; }
# copies: the template copies' images in the rbd pool
copies() { rbd_p ls | grep '^copy-tmpl' | sort; }

for h in 1 2 3; do
    hv $h init -q --catalog "$PG_CONNINFO dbname=vmc" --host-id "host$h" \
        2> "init$h.err" || fail "init host$h: $(cat "init$h.err")"
done
hv 1 pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    2> pa.err || {
    grep -q 'built without librbd' pa.err && skip "vm-clone was built without librbd"
    fail "pool add --type rbd: $(cat pa.err)"
}
# the rbd default, then the test's limit
hv 2 pool set ceph --max-clones-per-base default --json > def.json || fail "pool set default"
python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["max_clones_per_base"] != 200)' def.json ||
    fail "rbd default: $(cat def.json)"
hv 2 pool set ceph --max-clones-per-base 3 -q 2> set.err || fail "pool set: $(cat set.err)"

qemu-img create -q -f qcow2 "$T/t.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 8M 512k' "$T/t.qcow2" >/dev/null
hv 1 template import -q tmpl "$T/t.qcow2" 2> imp.err || fail "import: $(cat imp.err)"
hv 1 template copy tmpl --pool ceph -q 2> copy.err || fail "template copy: $(cat copy.err)"

pids=
for i in $(seq 10); do
    h=$(( (i % 3) + 1 ))
    hv $h clone tmpl --name "vm$i" --linked --pool ceph -q 2> "c$i.err" &
    pids="$pids $!"
done
n=0
for p in $pids; do
    n=$((n + 1))
    wait "$p" || fail "clone $n failed: $(cat c*.err)"
done

# the catalog: 4 ready copies numbered 0..3, the later ones from copy 0
[ "$(psql_q "SELECT count(*) FROM template_copies WHERE state = 'ready'")" = 4 ] ||
    fail "template copies: $(psql_q "SELECT id, copy_no, state FROM template_copies")"
[ "$(psql_q "SELECT min(copy_no) || ' ' || max(copy_no) FROM template_copies")" = "0 3" ] ||
    fail "copy numbers: $(psql_q "SELECT copy_no FROM template_copies")"
[ "$(psql_q "SELECT count(*) FROM template_copies WHERE copy_no > 0 AND mechanism = 'rbd-copy' AND source_copy_id = (SELECT id FROM template_copies WHERE copy_no = 0)")" = 3 ] ||
    fail "extra copies' source: $(psql_q "SELECT copy_no, mechanism, source_copy_id FROM template_copies")"

# Ceph: 4 copy images, each with a protected vmclone-base and <= 3 children
[ "$(copies | wc -l)" = 4 ] || fail "copy images: $(rbd_p ls)"
[ "$(rbd_p ls | grep -c '^vm')" = 10 ] || fail "VM images: $(rbd_p ls)"
: > kids
for c in $(copies); do
    rbd_p snap ls "$c" | grep -q 'vmclone-base' || fail "$c has no vmclone-base"
    rbd_p info "$c@vmclone-base" | grep -q 'protected: True' || fail "$c@vmclone-base is not protected"
    k=$(rbd_p children "$c@vmclone-base" | sed 's|.*/||; s/-disk0-.*//')
    n=$(echo "$k" | grep -c .)
    [ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "$c has $n children: $k"
    echo "$n" >> counts
    echo "$k" >> kids
done
[ "$(sort -n counts | tr '\n' ' ')" = "1 3 3 3 " ] || fail "children per copy: $(cat counts)"
deps=$(hv 2 deps tmpl | awk '$1 == "vm" { print $2 }' | sort)
[ "$(echo "$deps" | wc -l)" = 10 ] || fail "deps: $deps"
[ "$(sort kids)" = "$deps" ] || fail "rbd children ($(sort kids | tr '\n' ' ')) != deps ($deps)"
for i in $(seq 10); do
    img=$(psql_q "SELECT v.file FROM volumes v JOIN vms m ON m.id = v.vm_id WHERE m.name = 'vm$i'")
    qemu-img compare -q -f qcow2 -F raw "$T/t.qcow2" "rbd:$CEPH_POOL/$img:conf=$CEPH_CONF" ||
        fail "vm$i does not read as the template"
done
for c in $(copies); do
    qemu-img compare -q -f qcow2 -F raw "$T/t.qcow2" "rbd:$CEPH_POOL/$c@vmclone-base:conf=$CEPH_CONF" ||
        fail "copy $c does not read as the template"
done
hv 3 tree tmpl > tree.out || fail "tree"
grep -q 'copy tmpl@ceph#3 ' tree.out || fail "tree: $(cat tree.out)"
hv 3 fsck --json > fsck.json || fail "fsck: $(cat fsck.json)"
python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["inconsistencies"] != 0)' fsck.json ||
    fail "fsck: $(cat fsck.json)"

# removal: refused while clones exist; gc removes the copy nobody uses
hv 1 template rm -q tmpl 2> trm.err && fail "template rm with 10 clones"
grep -q 'dependents' trm.err || fail "template rm: $(cat trm.err)"
one=$(psql_q "SELECT c.id FROM template_copies c WHERE (SELECT count(*) FROM volumes x WHERE x.parent_id IN (SELECT id FROM volumes WHERE copy_id = c.id)) = 1")
[ -n "$one" ] || fail "no copy with 1 clone"
img=$(psql_q "SELECT file FROM volumes WHERE copy_id = $one")
vm=$(psql_q "SELECT m.name FROM vms m JOIN volumes v ON v.vm_id = m.id JOIN volumes b ON b.id = v.parent_id WHERE b.copy_id = $one")
hv 2 gc -q 2> gc.err || fail "gc: $(cat gc.err)"
[ "$(copies | wc -l)" = 4 ] || fail "gc removed a used copy: $(copies)"
hv 3 rm -q "$vm" 2> rm.err || fail "rm $vm: $(cat rm.err)"
hv 2 gc -q 2> gc.err || fail "gc: $(cat gc.err)"
[ "$(psql_q "SELECT count(*) FROM template_copies")" = 3 ] || fail "gc kept the unused copy"
! copies | grep -qx "$img" || fail "gc left the image $img"
[ "$(copies | wc -l)" = 3 ] || fail "copies after gc: $(copies)"

for i in $(seq 10); do
    [ "vm$i" = "$vm" ] && continue
    hv $(( (i % 3) + 1 )) rm -q "vm$i" 2> rm.err || fail "rm vm$i: $(cat rm.err)"
done
hv 1 template rm -q tmpl 2> trm.err || fail "template rm: $(cat trm.err)"
[ -z "$(rbd_p ls)" ] || fail "images left: $(rbd_p ls)"
