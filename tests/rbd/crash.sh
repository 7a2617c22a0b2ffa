#!/bin/bash
# tests/rbd/crash.sh - kill -9 of a host's operation on an rbd pool in
# the middle (paused at each of the journal's crash points, then killed),
# then another host's 'vm-clone fsck --reap' finishes or rolls it back:
# two stores with their own --host-id share a PostgreSQL catalog
# (tests/helpers/pg.sh) and an rbd pool (tests/helpers/ceph.sh). After
# each: no journal row left running, no object in transit, and the
# catalog, the rbd images, their RBD snapshots and 'rbd children' agree;
# fsck finds nothing. CRASH_STEPS=short (the sanitizer run) takes every
# other point.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
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
    vmc --home "$T/h$h" "$@"
}
for h in 1 2; do
    hv $h init -q --catalog "$PG_CONNINFO dbname=vmc" --host-id "host$h" ||
        fail "init host$h"
done
hv 1 pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" -q || {
    grep -q 'built without librbd' vmc.err && skip "vm-clone was built without librbd"
    fail "pool add --type rbd: $(cat vmc.err)"
}
qemu-img create -q -f qcow2 "$T/t.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 8M 512k' "$T/t.qcow2" >/dev/null
# the template in a shared secondary pool (both hosts mount it): host2
# may then finish host1's template copy
mkdir "$T/sec"
hv 1 pool add sec "$T/sec" --kind secondary --shared -q || fail "pool add sec"
hv 1 template import -q tmpl "$T/t.qcow2" --pool sec || fail "import"

q() { psql "$PG_CONNINFO dbname=vmc" -AtqX -c "$1"; }
rbdc() { rbd -p "$CEPH_POOL" "$@"; }

# agree WHAT: catalog, images, RBD snapshots and children agree
agree() {
    local want have img
    [ "$(q "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] ||
        fail "$1: journal rows left running: $(q "SELECT id, op, host_id FROM journal WHERE state = 'running'")"
    [ "$(q "SELECT count(*) FROM vms WHERE state != 'ready'") $(q "SELECT count(*) FROM volumes WHERE state != 'ready'") $(q "SELECT count(*) FROM snapshots WHERE state != 'ready'")" = "0 0 0" ] ||
        fail "$1: rows left in transit"
    want=$(q "SELECT v.file FROM volumes v JOIN pools p ON p.id = v.pool_id WHERE p.type = 'rbd' AND v.file NOT LIKE '%@%'" | sort)
    have=$(rbdc ls | sort)
    [ "$want" = "$have" ] || fail "$1: rbd images ($have) != catalog ($want)"
    want=$(q "SELECT v.file FROM volumes v JOIN pools p ON p.id = v.pool_id WHERE p.type = 'rbd' AND v.file LIKE '%@%'" | sort)
    have=$(for img in $(rbdc ls); do
               rbdc snap ls "$img" | awk -v i="$img" 'NR > 1 && $2 != "vmclone-base" { print i "@" $2 }'
           done | sort)
    [ "$want" = "$have" ] || fail "$1: RBD snapshots ($have) != catalog ($want)"
    for img in $(rbdc ls); do
        rbdc snap ls "$img" | awk 'NR > 1 { print $2 }' | while read -r s; do
            want=$(q "SELECT k.file FROM volumes k JOIN volumes v ON v.id = k.parent_id WHERE k.file NOT LIKE '%@%' AND v.file = '$img$( [ "$s" = vmclone-base ] || echo "@$s")'" | sort)
            have=$(rbdc children "$img@$s" | sed 's|.*/||' | sort)
            [ "$want" = "$have" ] || fail "$1: rbd children of $img@$s ($have) != catalog ($want)"
        done
    done
    hv 2 fsck --json > fsck.json || fail "$1: fsck: $(cat fsck.json)"
    grep -q '"inconsistencies": 0' fsck.json || fail "$1: fsck: $(cat fsck.json)"
}

# killed POINT ARGS...: host1 runs ARGS, paused at POINT, is killed (-9);
# host2 reaps it. $ran: 0 when CRASH_STEPS=short skipped it
n=0
killed() {
    local point=$1 bg
    shift
    n=$((n + 1))
    ran=0
    if [ "${CRASH_STEPS:-}" = short ] && [ $((n % 2)) = 0 ]; then
        return 0
    fi
    ran=1
    rm -rf "$T/pause"; mkdir "$T/pause"
    VMCLONE_PAUSE_AT=$point VMCLONE_PAUSE_DIR=$T/pause \
        "$VMCLONE" --home "$T/h1" "$@" > bg.out 2> bg.err &
    bg=$!
    for _ in $(seq 1 3000); do
        [ -e "$T/pause/paused" ] && break
        kill -0 "$bg" 2>/dev/null || break
        sleep 0.01
    done
    [ -e "$T/pause/paused" ] || fail "'$*' never reached $point: $(cat bg.err)"
    kill -9 "$bg"
    wait "$bg" 2>/dev/null
    # the dead session's advisory locks go with it (a second or so)
    for _ in $(seq 1 50); do
        hv 2 fsck --reap -q > reap.out && break
        sleep 0.2
    done
    [ "$(q "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] ||
        fail "$point: host2's fsck --reap left host1's row: $(cat reap.out vmc.err)"
    agree "$point"
    note "$point: reaped"
}

killed copy.before-commit clone tmpl --linked --pool ceph --name c0
hv 1 template copy tmpl --pool ceph -q || fail "template copy"
killed clone.before-stage clone tmpl --linked --pool ceph --name 'g-%d' --count 3
killed clone.before-commit clone tmpl --linked --pool ceph --name 'g-%d' --count 3
[ "$(q "SELECT count(*) FROM vms")" = 0 ] || fail "the clone group was not rolled back"
hv 2 clone tmpl --linked --pool ceph --name base -q || fail "clone base"
hv 2 clone tmpl --linked --pool ceph --name del -q || fail "clone del"
killed snapshot.before-commit snapshot create base s
[ "$(q "SELECT count(*) FROM snapshots")" = 0 ] || fail "snapshot create was not rolled back"
hv 2 snapshot create base s -q || fail "snapshot create"
killed clone.before-commit clone base@s --linked --pool ceph --name fs
hv 2 snapshot create base s2 -q || fail "snapshot create s2"
killed snapshot-rm.before-finish snapshot rm base s2
[ "$ran" = 0 ] || [ "$(q "SELECT count(*) FROM snapshots WHERE name = 's2'")" = 0 ] || fail "snapshot rm was not rolled forward"
killed flatten.before-commit flatten base
killed delete.after-mark rm del
[ "$ran" = 0 ] || ! hv 2 info del -q 2>/dev/null || fail "rm del was not rolled forward"
qemu-img compare -q -f qcow2 -F raw "$T/t.qcow2" \
    "rbd:$CEPH_POOL/$(q "SELECT v.file FROM volumes v JOIN vms m ON m.id = v.vm_id WHERE m.name = 'base'"):conf=$CEPH_CONF" ||
    fail "base does not read as the template"
agree "the end"
