#!/bin/bash
# tests/rbd/connect.sh - connecting to the Ceph monitor (src/ops/rbd.c):
# a connection that times out is tried again after a pause (3 attempts
# in all, the pause doubling from 250 ms); the conf's
# client_mount_timeout bounds each attempt (else 15 s):
#  - a monitor that does not answer for 1.5 s (stopped: TCP connects,
#    nothing answers), with a 1 s mount timeout: the first attempt times
#    out, a later one gets in, and pool add works
#  - no monitor at all: three attempts of ~1 s each, then a clear error
#    naming them, exit 1, within bounds (without the retry: one attempt
#    of 15 s, the conf's timeout ignored)
. "$(dirname "$0")/rbd-lib.sh"

mon=${_ceph_pids##* }
sed 's/^\[global\]$/[global]\nclient_mount_timeout = 1/' "$CEPH_CONF" > short.conf
grep -q '^client_mount_timeout = 1$' short.conf || fail "short.conf: $(cat short.conf)"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# a monitor busy for 1.5 s
kill -STOP "$mon" || fail "cannot stop the monitor ($mon)"
cleanup_fn kill -CONT "$mon"
( sleep 1.5; kill -CONT "$mon" ) &
waker=$!
t0=$(now_ms)
vmc pool add busy --type rbd --rbd-pool "$CEPH_POOL" --conf "$T/short.conf" \
    --kind primary -q || fail "pool add while the monitor was busy for 1.5 s: $(cat vmc.err)"
ms=$(( $(now_ms) - t0 ))
wait "$waker"
note "pool add with the monitor busy for 1.5 s: $ms ms"
[ "$ms" -ge 1000 ] || fail "pool add took $ms ms: the monitor was not stopped"

# no monitor
port=$(_ceph_port)
sed "s/^mon host = .*/mon host = [v2:127.0.0.1:$port]/" short.conf > dead.conf
grep -q "^mon host = \[v2:127.0.0.1:$port\]\$" dead.conf || fail "dead.conf: $(cat dead.conf)"
t0=$(now_ms)
expect_rc 1 vmc pool add dead --type rbd --rbd-pool "$CEPH_POOL" --conf "$T/dead.conf" --kind primary
ms=$(( $(now_ms) - t0 ))
note "pool add with no monitor: $ms ms: $(cat vmc.err)"
grep -q "cannot connect to the cluster: Connection timed out (3 attempts)" vmc.err ||
    fail "no monitor: $(cat vmc.err)"
[ "$ms" -ge 3000 ] && [ "$ms" -lt 12000 ] || fail "no monitor: $ms ms for 3 attempts of 1 s"
[ "$(vmc pool list -q 2>/dev/null | grep -c dead)" = 0 ] || fail "the failed pool add left a pool"
exit 0
