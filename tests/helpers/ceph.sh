# tests/helpers/ceph.sh - a throwaway Ceph cluster for one test:
#
#   . tests/helpers/ceph.sh
#   ceph_start          # or exit 77 with the reason
#   ... "$CEPH_CONF" (also exported), pool "$CEPH_POOL" ...
#
# One monitor and one OSD whose object store is memstore (data in the
# OSD's RAM: keep images at a few MiB), auth none, bound to 127.0.0.1, all
# files (config, keyring, mon and osd data, logs, sockets) in one private
# directory. ceph_start registers ceph_stop with tests/lib.sh's cleanup_fn,
# or else chains an EXIT trap (keeping one already set, e.g. pg.sh's, and
# the test's exit status). ceph_stop kills the daemons by the pids it
# recorded, never by name, and removes the directory, also when the test
# fails.
# See /work/shared/notes/scale-out.md §3 and §8, ceph.md §2.

CEPH_DIR=
CEPH_POOL=rbd
_ceph_pids=

_ceph_skip() {
    echo "SKIP: ${TEST_NAME:-ceph}: $*" >&2
    exit 77
}

_ceph_fail() {
    local f
    echo "FAIL: ceph fixture: $*" >&2
    for f in "$CEPH_DIR"/log/*; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

# ceph_stop: kill the daemons (OSD first) by pid, wait, remove the dir.
ceph_stop() {
    local pid n
    [ -n "$CEPH_DIR" ] || return 0
    for pid in $_ceph_pids; do
        kill "$pid" 2>/dev/null
    done
    for pid in $_ceph_pids; do
        n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do
            # a zombie has stopped: only its parent can reap it
            grep -q '^State:.*Z' /proc/$pid/status 2>/dev/null && break
            sleep 0.1; n=$((n + 1))
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    _ceph_pids=
    rm -rf "$CEPH_DIR"
    CEPH_DIR=
}

# A port of 127.0.0.1 free for bind() now, below the ephemeral range and
# outside the OSDs' 6800-7300.
_ceph_port() {
    /usr/bin/python3 - <<'EOF'
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
lo = lo if lo > 12000 else 32768
for _ in range(100):
    p = random.randrange(10000, lo)
    if 6800 <= p <= 7300:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
}

# _ceph_mon_cmd ARGS: the monitor commands of the start-up, through one
# python3-rados client (the ceph CLI costs ~0.35 s per call): "osd-new
# UUID" prints the OSD id; "pool NAME" makes a size-1 rbd pool and waits
# for osd.0 to be up.
_ceph_mon_cmd() {
    timeout 60 /usr/bin/python3 - "$CEPH_CONF" "$@" <<'EOF'
import json, sys, time, rados
conf, what = sys.argv[1], sys.argv[2]
end = time.time() + 30
while True:
    cl = rados.Rados(conffile=conf, conf={"client_mount_timeout": "2",
                                          "rados_mon_op_timeout": "10"})
    try:
        cl.connect(timeout=2)
        break
    except rados.Error:
        cl.shutdown()
        if time.time() > end:
            sys.exit("monitor not reachable")
        time.sleep(0.1)
def mon(**cmd):
    rc, out, errs = cl.mon_command(json.dumps(cmd), b"")
    if rc < 0:
        sys.exit("%s: %d %s" % (cmd["prefix"], rc, errs))
    return out.decode().strip()
if what == "osd-new":
    print(mon(prefix="osd new", uuid=sys.argv[3]))
else:
    mon(prefix="osd pool create", pool=sys.argv[3], pg_num=8, pgp_num=8)
    mon(prefix="osd pool application enable", pool=sys.argv[3], app="rbd")
    while True:
        osds = json.loads(mon(prefix="osd dump", format="json"))["osds"]
        if any(o["osd"] == 0 and o["up"] for o in osds):
            break
        if time.time() > end:
            sys.exit("osd.0 did not come up")
        time.sleep(0.05)
cl.shutdown()
EOF
}

_ceph_conf() {
    local port=$1 fsid=$2
    cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = none
auth service required = none
auth client required = none
keyring = $CEPH_DIR/keyring
run dir = $CEPH_DIR/run
crash dir = $CEPH_DIR/run
log file = $CEPH_DIR/log/\$name.log
mon cluster log file = $CEPH_DIR/log/cluster.log
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.05
paxos min wait = 0.01
[mon]
mon data = $CEPH_DIR/mon
admin socket = $CEPH_DIR/run/\$name.asok
ms bind retry count = 1
[osd]
osd data = $CEPH_DIR/osd
admin socket = $CEPH_DIR/run/\$name.asok
osd objectstore = memstore
memstore device bytes = 2147483648
memstore page set = true
osd op num shards = 2
osd op num threads per shard = 1
osd fast shutdown notify mon = false
# a client killed without closing its image stops watching it after 5 s
osd client watch timeout = 5
[client]
admin socket =
log file = $CEPH_DIR/log/client.log
rbd default features = 61
# 1 MiB objects: a clone's first write copies up 1 MiB, not 4
rbd default order = 20
EOF
}

# ceph_start: start the cluster; sets and exports CEPH_DIR, CEPH_CONF,
# CEPH_POOL, CEPH_START_MS.
ceph_start() {
    local b t0 port fsid uuid id n prev
    for b in ceph-mon ceph-osd ceph-authtool monmaptool rbd uuidgen; do
        command -v "$b" >/dev/null ||
            _ceph_skip "no $b: scripts/install-deps.sh installs ceph-mon ceph-osd ceph-common"
    done
    /usr/bin/python3 -c 'import rados' 2>/dev/null ||
        _ceph_skip "no python3-rados: scripts/install-deps.sh installs ceph-common"
    t0=$(date +%s%N)
    CEPH_DIR=$(mktemp -d /tmp/vmcceph.XXXXXX) || _ceph_skip "mktemp failed"
    if declare -F cleanup_fn >/dev/null; then
        cleanup_fn ceph_stop        # tests/lib.sh's exit hook runs it
    else
        # keep the test's status: the chained trap exits with it
        prev=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT$/\1/")
        # shellcheck disable=SC2064
        trap "_ceph_rc=\$?; ceph_stop; $prev; exit \$_ceph_rc" EXIT
    fi
    mkdir -p "$CEPH_DIR/mon" "$CEPH_DIR/osd" "$CEPH_DIR/run" "$CEPH_DIR/log"
    CEPH_CONF=$CEPH_DIR/ceph.conf
    export CEPH_DIR CEPH_CONF CEPH_POOL
    unset CEPH_ARGS
    port=$(_ceph_port)
    [ -n "$port" ] || _ceph_fail "no free port on 127.0.0.1"
    fsid=$(uuidgen)
    _ceph_conf "$port" "$fsid"
    ceph-authtool -C "$CEPH_DIR/keyring" -g -n mon. --cap mon 'allow *' \
        >/dev/null && \
    ceph-authtool "$CEPH_DIR/keyring" -g -n client.admin --cap mon 'allow *' \
        --cap osd 'allow *' >/dev/null &&
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" \
        "$CEPH_DIR/monmap" >/dev/null &&
    ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" \
        --keyring "$CEPH_DIR/keyring" >"$CEPH_DIR/log/mkfs-mon" 2>&1 ||
        _ceph_fail "monitor mkfs"
    # -f: the daemon stays in the foreground, so $! is its pid
    ceph-mon -c "$CEPH_CONF" -i a -f </dev/null >"$CEPH_DIR/log/mon.out" 2>&1 &
    _ceph_pids="$!"
    uuid=$(uuidgen)
    ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$uuid" --no-mon-config \
        >"$CEPH_DIR/log/mkfs-osd" 2>&1 || _ceph_fail "osd mkfs"
    id=$(_ceph_mon_cmd osd-new "$uuid") || _ceph_fail "osd new"
    [ "$id" = 0 ] || _ceph_fail "osd id '$id', not 0"
    ceph-osd -c "$CEPH_CONF" -i 0 -f </dev/null >"$CEPH_DIR/log/osd.out" 2>&1 &
    _ceph_pids="$! $_ceph_pids"
    _ceph_mon_cmd pool "$CEPH_POOL" || _ceph_fail "pool create"
    # usable: an image can be made (PGs active, cls_rbd loaded)
    n=0
    until timeout 20 rbd -p "$CEPH_POOL" create --size 1M vmc-probe \
            >/dev/null 2>&1; do
        n=$((n + 1))
        [ $n -lt 100 ] || _ceph_fail "rbd pool not usable"
        sleep 0.1
    done
    timeout 20 rbd -p "$CEPH_POOL" rm --no-progress vmc-probe >/dev/null 2>&1
    CEPH_START_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    export CEPH_START_MS
}
