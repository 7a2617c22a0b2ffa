#!/bin/bash
# tests/rbd/prefetch.sh - a clone into an rbd pool connects to Ceph in the
# background as soon as the catalog has resolved the pool
# (vmc_rbd_prefetch(), src/ops/rbd.c), traced by VMCLONE_TRACE_RBD=1:
#  - overlap: while another client holds the catalog's write lock for
#    3 s, the clone starts connecting (in the background) before the
#    lock is released; the clone then succeeds and uses that connection
#    (no second connect)
#  - snapshot create of an rbd VM connects in the background too
#  - a clone that fails in the catalog after the prefetch (the name is
#    taken) exits with the conflict status after the connect ended and
#    the connection was shut down, no abort
#  - a failing connect is reported by the first real rbd call as before:
#    no monitor: "cannot connect to the cluster: Connection timed out
#    (3 attempts)" for the image it was for, exit 1; Ceph's libraries
#    broken: "cannot be loaded"
. "$(dirname "$0")/rbd-lib.sh"

trace_ts() {    # trace_ts FILE WORDS: the time of the first trace line with WORDS
    awk -v w="$2" 'index($0, "vm-clone: rbd trace ") == 1 && index($0, w) { print $4; exit }' "$1"
}

vmc pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    --kind primary -q || fail "pool add: $(cat vmc.err)"
mk_template "$T/t.qcow2"
vmc template import tmpl "$T/t.qcow2" -q || fail "template import: $(cat vmc.err)"
vmc clone tmpl --linked --pool ceph --name warm -q || fail "warm clone: $(cat vmc.err)"

# --- overlap: the catalog's write lock held for 3 s by another client
if [ -n "${VMC_TEST_PG:-}" ]; then
    conn=$(sed -n 's/^catalog=//p' "$H/catalog.conf")
    ( psql "$conn" -AtqX -c "BEGIN; LOCK TABLE vms IN EXCLUSIVE MODE;
        SELECT pg_sleep(3); COMMIT;" >/dev/null
      date +%s.%N > released ) &
    sleep 0.5       # psql has the lock
else
    python3 - "$H/catalog.db" <<'EOF' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open("locked", "w").close()
time.sleep(3)
db.execute("COMMIT")
open("released", "w").write("%.6f\n" % time.time())
EOF
    n=0
    while [ ! -e locked ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
    [ -e locked ] || fail "the lock holder did not start"
fi
holder=$!
VMCLONE_TRACE_RBD=1 vmc clone tmpl --linked --pool ceph --name p1 ||
    fail "clone while the catalog was locked: $(cat vmc.err)"
wait "$holder" || fail "the lock holder failed"
cp vmc.err overlap.err
rel=$(cat released)
bg=$(trace_ts overlap.err "connect in the background")
done_bg=$(trace_ts overlap.err "connected in the background status=0")
note "lock released at $rel; connect started $bg, done $done_bg"
[ -n "$bg" ] && [ -n "$done_bg" ] || fail "no background connect: $(cat overlap.err)"
# started while the clone waited for the lock (without the prefetch it
# starts after the clone's transaction, so after the release); how long
# it takes is the machine's load
awk -v a="$bg" -v b="$rel" 'BEGIN { exit !(a < b) }' ||
    fail "the connect started after the catalog's lock was released ($bg >= $rel)"
grep -q "connect now" overlap.err && fail "the clone connected a second time: $(cat overlap.err)"
grep -q "vm-clone: rbd trace .* shutdown " overlap.err || fail "no shutdown: $(cat overlap.err)"
rbd -p "$CEPH_POOL" info "$(vm_image p1)" >/dev/null || fail "p1's image is missing"

# --- snapshot create of an rbd VM prefetches too (cat_rbd_vm())
VMCLONE_TRACE_RBD=1 vmc snapshot create p1 s1 || fail "snapshot create: $(cat vmc.err)"
grep -q "^vm-clone: rbd trace .* connected in the background status=0" vmc.err ||
    fail "snapshot create: no background connect: $(cat vmc.err)"
grep -q "connect now" vmc.err && fail "snapshot create connected twice: $(cat vmc.err)"

# --- prefetched, never used: the name is taken
VMCLONE_TRACE_RBD=1 expect_rc 4 vmc clone tmpl --linked --pool ceph --name p1
grep -q "connected in the background status=0" vmc.err || fail "taken name: $(cat vmc.err)"
grep -q "vm-clone: rbd trace .* shutdown " vmc.err || fail "taken name: no shutdown: $(cat vmc.err)"
grep -q "terminate called\|Aborted\|AddressSanitizer" vmc.err && fail "taken name: $(cat vmc.err)"

# --- no monitor: the pool's conf now names a port nobody listens on
sed 's/^\[global\]$/[global]\nclient_mount_timeout = 1/' "$CEPH_CONF" > mon.conf
vmc pool add deadp --type rbd --rbd-pool "$CEPH_POOL" --conf "$T/mon.conf" \
    --kind primary -q || fail "pool add deadp: $(cat vmc.err)"
vmc clone tmpl --linked --pool deadp --name dwarm -q || fail "clone into deadp: $(cat vmc.err)"
port=$(_ceph_port)
sed -i "s/^mon host = .*/mon host = [v2:127.0.0.1:$port]/" mon.conf
grep -q "^mon host = \[v2:127.0.0.1:$port\]\$" mon.conf || fail "mon.conf: $(cat mon.conf)"
VMCLONE_TRACE_RBD=1 expect_rc 1 vmc clone tmpl --linked --pool deadp --name d1
grep -q "^vm-clone: rbd trace .* connected in the background status=-110" vmc.err ||
    fail "no monitor: the background connect: $(cat vmc.err)"
# the first rbd call (the template's copy) took the background's failure;
# the roll back of that copy connects again, as it always did
grep -q "^vm-clone: rbd trace .* waited .* for the background connect" vmc.err ||
    fail "no monitor: the first rbd call did not take the background's result: $(cat vmc.err)"
grep -v "^vm-clone: rbd trace " vmc.err > dead.err
grep -q "rbd 'rbd:$CEPH_POOL:conf=$T/mon.conf/[^']*': cannot connect to the cluster: Connection timed out (3 attempts)" dead.err ||
    fail "no monitor: $(cat dead.err)"
vmc list -q | grep -q "^d1\$" && fail "the failed clone left VM d1"
# prefetched, never used, the connect failing: exit waits for it
VMCLONE_TRACE_RBD=1 expect_rc 4 vmc clone tmpl --linked --pool deadp --name p1
grep -q "connected in the background status=-110" vmc.err ||
    fail "taken name, no monitor: exited before the connect ended: $(cat vmc.err)"

# --- Ceph's libraries cannot be loaded: broken stand-ins first
mkdir broken
echo "not a library" > broken/librados.so.2
echo "not a library" > broken/librbd.so.1
LD_LIBRARY_PATH=$T/broken${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    expect_rc 1 vmc clone tmpl --linked --pool ceph --name b1
grep -q "^vm-clone: rbd '[^']*': Ceph's client libraries cannot be loaded (librbd1, librados2): .*librados" vmc.err ||
    fail "broken libraries: $(cat vmc.err)"
vmc list -q | grep -q "^b1\$" && fail "the failed clone left VM b1"
note "ok"
exit 0
