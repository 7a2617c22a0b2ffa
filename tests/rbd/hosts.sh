#!/bin/bash
# tests/rbd/hosts.sh - three "hosts" (three stores with their own
# --host-id) share one PostgreSQL catalog (tests/helpers/pg.sh) and one
# rbd pool (tests/helpers/ceph.sh): the template, in host1's local pool,
# reaches the others through host1's copy into the rbd pool (another
# host's clone before it is refused, naming host1); 10 linked clones
# started at once from the three then make 10 RBD clones of that one copy;
# 'rbd children' agrees with 'vm-clone deps'; each clone reads as the
# template (qemu-img over rbd:); every host sees the others' VMs.
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
for h in 1 2 3; do
    hv $h init -q --catalog "$PG_CONNINFO dbname=vmc" --host-id "host$h" \
        2> "init$h.err" || fail "init host$h: $(cat "init$h.err")"
done
hv 1 pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    2> pa.err || {
    grep -q 'built without librbd' pa.err && skip "vm-clone was built without librbd"
    fail "pool add --type rbd: $(cat pa.err)"
}
qemu-img create -q -f qcow2 "$T/t.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 8M 512k' "$T/t.qcow2" >/dev/null
hv 1 template import -q tmpl "$T/t.qcow2" 2> imp.err || fail "import: $(cat imp.err)"
# the template is in host1's local secondary pool: another host's first
# clone is refused until host1 has copied it into the shared rbd pool
hv 3 clone tmpl --name early --linked --pool ceph -q 2> early.err &&
    fail "host3 cloned from host1's local pool"
grep -q "local to host 'host1'" early.err || fail "host3's refusal: $(cat early.err)"
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

psql_q() { psql "$PG_CONNINFO dbname=vmc" -AtqX -c "$1"; }
[ "$(psql_q "SELECT count(*) FROM template_copies")" = 1 ] ||
    fail "$(psql_q "SELECT count(*) FROM template_copies") template copies, not 1"
[ "$(rbd -p "$CEPH_POOL" ls | grep -c '^copy-tmpl')" = 1 ] ||
    fail "template copies in rbd: $(rbd -p "$CEPH_POOL" ls)"
[ "$(rbd -p "$CEPH_POOL" ls | grep -c '^vm')" = 10 ] ||
    fail "VM images in rbd: $(rbd -p "$CEPH_POOL" ls)"
copy=$(rbd -p "$CEPH_POOL" ls | grep '^copy-tmpl')
kids=$(rbd -p "$CEPH_POOL" children "$copy@vmclone-base" | sed 's|.*/||; s/-disk0-.*//' | sort)
deps=$(hv 2 deps tmpl | awk '$1 == "vm" { print $2 }' | sort)
[ "$(echo "$deps" | wc -l)" = 10 ] || fail "deps: $deps"
[ "$kids" = "$deps" ] || fail "rbd children ($kids) != deps ($deps)"
for i in 1 5 10; do
    img=$(psql_q "SELECT v.file FROM volumes v JOIN vms m ON m.id = v.vm_id WHERE m.name = 'vm$i'")
    qemu-img compare -q -f qcow2 -F raw "$T/t.qcow2" "rbd:$CEPH_POOL/$img:conf=$CEPH_CONF" ||
        fail "vm$i does not read as the template"
done
for h in 1 2 3; do
    [ "$(hv $h list -q --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 10 ] ||
        fail "host$h does not list the 10 VMs"
done
for i in $(seq 10); do
    hv $(( (i % 3) + 1 )) rm -q "vm$i" 2> rm.err || fail "rm vm$i: $(cat rm.err)"
done
# the template's own files are in host1's local pool: only host1 removes it
hv 3 template rm -q tmpl 2> trm3.err && fail "host3 removed host1's template"
grep -q "local to host 'host1'" trm3.err || fail "host3's template rm: $(cat trm3.err)"
hv 1 template rm -q tmpl 2> trm.err || fail "template rm: $(cat trm.err)"
[ -z "$(rbd -p "$CEPH_POOL" ls)" ] || fail "images left: $(rbd -p "$CEPH_POOL" ls)"
