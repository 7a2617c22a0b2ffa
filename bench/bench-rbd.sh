#!/bin/bash
# bench-rbd.sh - rbd pools (issue 11) on a throwaway Ceph cluster
# (tests/helpers/ceph.sh) and PostgreSQL (tests/helpers/pg.sh), both
# stopped at the end:
#   1. one linked clone into an rbd pool: `vm-clone clone --linked` (the
#      whole process: store, catalog transactions, journal, librados
#      connection, rbd_clone3) vs the `rbd clone` CLI vs rbd_clone3 alone
#      (bench/rbd-clone3, one connection made beforehand), plus what one
#      connection costs and a linked clone into a dir pool (the catalog's
#      part); goal: vm-clone <= 1.5 x (rbd_clone3 + the dir-pool clone);
#      and K (20) clones in one `vm-clone clone --count` (one connection)
#      vs K rbd_clone3;
#   2. BENCH_PAR (200) parallel CI clones (`vm-clone --linked --name X`)
#      on PostgreSQL + rbd vs on SQLite + dir: wall time, and each clone's
#      own time (p50, p95, max), failures by message, monitor connections
#      that timed out after their 3 attempts.
# Medians of BENCH_N (15) rounds, in ms; a 16 MiB template; nothing is
# written into the clones (clones are metadata only). Figures only: the
# script fails only when a step fails.
# BENCH_COMPARE=/path/to/another/vm-clone (e.g. a build of main) times
# that binary's clones into the rbd and the dir pool too, in the same
# rounds (one of each in turn, so that a load that comes and goes hits
# both alike);
# BENCH_PAR=0 skips part 2.
#   usage: bench/bench-rbd.sh     (BENCH_BUILD, BENCH_N, BENCH_PAR, BENCH_COMPARE)
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "$ROOT/${BENCH_BUILD:-build}" && pwd)
VMC=$BUILD/src/cli/vm-clone
C3=$BUILD/bench/rbd-clone3
N=${BENCH_N:-15}
PAR=${BENCH_PAR:-200}
CMP=${BENCH_COMPARE:-}
for x in "$VMC" "$C3" ${CMP:+"$CMP"}; do
    [ -x "$x" ] || { echo "bench: $x not built (librbd-dev; ninja -C $BUILD)" >&2; exit 1; }
done
for x in rbd qemu-img qemu-io; do
    command -v $x >/dev/null || { echo "bench: no $x (scripts/install-deps.sh)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/vmc-bench-rbd.XXXXXX)
. "$ROOT/tests/helpers/pg.sh"
pg_start
trap 'pg_stop; rm -rf "$W"' EXIT
. "$ROOT/tests/helpers/ceph.sh"
ceph_start
cd "$W"
echo "PostgreSQL ready in ${PG_START_MS} ms, Ceph in ${CEPH_START_MS} ms ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"

now() { date +%s%N; }
# median of the numbers on stdin
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# timed CMD...: run it, print its wall time in ms
timed() {
    local t0 t1
    t0=$(now); "$@" >/dev/null; t1=$(now)
    awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f\n", d / 1e6 }'
}

qemu-img create -q -f qcow2 t.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 8M 512k' t.qcow2 >/dev/null

# --- 1. one linked clone ----------------------------------------------
export VMCLONE_HOME=$W/sq
$VMC init -q
$VMC pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" --kind primary -q
$VMC template import -q tmpl t.qcow2
$VMC clone tmpl --linked --pool ceph --name warm -q     # the pool copy, once
$VMC clone tmpl --linked --name dwarm -q                # the dir pool's copy
COPY=$(rbd -p "$CEPH_POOL" ls | grep '^copy-tmpl')

: > vmc.ms; : > cmp.ms
for i in $(seq $N); do
    timed $VMC clone tmpl --linked --pool ceph --name "r$i" -q >> vmc.ms
    [ -z "$CMP" ] || timed "$CMP" clone tmpl --linked --pool ceph --name "x$i" -q >> cmp.ms
done
: > dir.ms; : > cmpdir.ms
for i in $(seq $N); do
    timed $VMC clone tmpl --linked --name "d$i" -q >> dir.ms
    [ -z "$CMP" ] || timed "$CMP" clone tmpl --linked --name "xd$i" -q >> cmpdir.ms
done
for i in $(seq $N); do
    timed rbd clone --rbd-default-clone-format 1 "$CEPH_POOL/$COPY@vmclone-base" "$CEPH_POOL/cli$i"
done > cli.ms
"$C3" "$CEPH_CONF" "$CEPH_POOL" "$COPY" vmclone-base c3- "$N" > c3.ms
for i in $(seq 5); do "$C3" -c "$CEPH_CONF" "$CEPH_POOL"; done > conn.ms
for i in $(seq $N); do timed $VMC list -q; done > list.ms
[ "$($VMC deps tmpl | awk '$1 == "vm"' | wc -l)" -ge $((2 * N + $(cat cmp.ms cmpdir.ms | wc -l))) ] || { echo "bench: clones missing" >&2; exit 1; }

# in one process: --count K clones share one connection
K=20
t_cnt=$(timed $VMC clone tmpl --linked --pool ceph --name 'k-%d' --count $K -q)
t_c3k=$("$C3" "$CEPH_CONF" "$CEPH_POOL" "$COPY" vmclone-base k3- $K | awk '{ s += $1 } END { printf "%.1f", s }')
m_vmc=$(median < vmc.ms); m_dir=$(median < dir.ms); m_cli=$(median < cli.ms)
m_c3=$(median < c3.ms); m_conn=$(awk '{ print $1 }' conn.ms | median)
m_down=$(awk '{ print $2 }' conn.ms | median); m_list=$(median < list.ms)
echo
echo "one linked clone of a 16 MiB template (median of $N, ms)"
printf '  %-52s %8s\n' "rbd_clone3 alone (connected beforehand)" "$m_c3" \
    "one librados connection (create..ioctx)" "$m_conn" \
    "its shutdown (rados_shutdown)" "$m_down" \
    "rbd clone CLI (process + connection + clone)" "$m_cli" \
    "vm-clone list -q (process + store, no clone)" "$m_list" \
    "vm-clone clone --linked into a dir pool" "$m_dir" \
    "vm-clone clone --linked into the rbd pool" "$m_vmc"
[ -z "$CMP" ] || printf '  %-52s %8s\n' "BENCH_COMPARE's clone --linked into a dir pool" "$(median < cmpdir.ms)" \
    "BENCH_COMPARE's clone --linked into the rbd pool" "$(median < cmp.ms)"
printf '  %-52s %8s\n' "vm-clone clone --linked --count $K into rbd (total)" "$t_cnt" \
    "$K x rbd_clone3 alone (total)" "$t_c3k"
awk -v v="$m_vmc" -v c="$m_c3" -v d="$m_dir" -v l="$m_cli" -v t="$t_cnt" -v k="$t_c3k" -v li="$m_list" 'BEGIN {
    printf "  --count: (vm-clone total - vm-clone list) / rbd_clone3 total = %.2f\n", (t - li) / k
    printf "  vm-clone rbd / (rbd_clone3 + dir-pool clone) = %.2f (goal <= 1.5)\n", v / (c + d)
    printf "  vm-clone rbd / rbd clone CLI = %.2f\n", v / l }'
[ -z "$CMP" ] || awk -v x="$(median < cmp.ms)" -v c="$m_c3" -v d="$(median < cmpdir.ms)" 'BEGIN {
    printf "  BENCH_COMPARE: rbd / (rbd_clone3 + its dir-pool clone) = %.2f\n", x / (c + d) }'
# (set +e: see the end; under set -e a trap that meets a gone daemon
# stops before the others run, leaving PostgreSQL running)
[ "$PAR" -gt 0 ] || { set +e; exit 0; }

# --- 2. PAR parallel CI clones ----------------------------------------
# par STORE POOLARGS PREFIX: PAR `vm-clone --linked` at once, each timed
# (PREFIX.lat: "ms exit-status" per clone); prints "wall-ms failed"
par() {
    local t0 t1 i pids=
    : > "$3.lat"
    : > "$3.err"
    t0=$(now)
    for i in $(seq "$PAR"); do
        (
            c0=$(now)
            rc=0
            VMCLONE_HOME=$1 $VMC --linked $2 --name "$3$i" -q 2>> "$3.err" || rc=$?
            echo "$(( ($(now) - c0) / 1000000 )) $rc" >> "$3.lat"
        ) &
        pids="$pids $!"
    done
    for i in $pids; do wait "$i" || true; done
    t1=$(now)
    echo "$(( (t1 - t0) / 1000000 )) $(awk '$2 != 0' "$3.lat" | wc -l)"
}
# pct FILE P: the P-th percentile of the successful clones' ms in FILE
pct() {
    awk '$2 == 0 { print $1 }' "$1" | sort -n |
        awk -v p="$2" '{ a[NR] = $1 } END { if (!NR) { print "-"; exit }
            i = int((NR * p + 99) / 100); if (i < 1) i = 1; print a[i] }'
}
pg_createdb vmc
export VMCLONE_HOME=$W/pg
$VMC init -q --catalog "$PG_CONNINFO dbname=vmc" --host-id bench
$VMC pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" --kind primary -q
$VMC template import -q tmpl t.qcow2
$VMC config set default-template tmpl
$VMC clone tmpl --linked --pool ceph --name warm -q
export VMCLONE_HOME=$W/dir
$VMC init -q
$VMC template import -q tmpl t.qcow2
$VMC config set default-template tmpl
$VMC clone tmpl --linked --name warm -q
unset VMCLONE_HOME

read -r w_pg f_pg < <(par "$W/pg" "--pool ceph" pg-)
read -r w_sq f_sq < <(par "$W/dir" "" sq-)
n_pg=$(VMCLONE_HOME=$W/pg $VMC deps tmpl 2>/dev/null | awk '$1 == "vm"' | wc -l)
n_sq=$(VMCLONE_HOME=$W/dir $VMC deps tmpl 2>/dev/null | awk '$1 == "vm"' | wc -l)
# the PostgreSQL store's copies of tmpl (hot copies: at most 200 clones
# each), each with its rbd children, and their total
kids=$(psql "$PG_CONNINFO dbname=vmc" -AtqX -c "SELECT v.file FROM volumes v
        WHERE v.copy_id IS NOT NULL ORDER BY v.id" | while read -r img; do
    echo "$img $(rbd -p "$CEPH_POOL" children "$img@vmclone-base" 2>/dev/null | wc -l)"
done | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $1, $2; t += $2 }
            END { printf "%s total %d", (NR ? ";" : "none;"), t }')
echo
echo "$PAR parallel 'vm-clone --linked --name X' (ms: wall; per clone: wall / $PAR, then each clone's own time)"
printf '  %-18s %8s %8s %8s %8s %8s %7s\n' "" wall "wall/n" p50 p95 max failed
for b in "PostgreSQL + rbd:pg-:$w_pg:$f_pg" "SQLite + dir:sq-:$w_sq:$f_sq"; do
    IFS=: read -r label pre wall failed <<< "$b"
    awk -v l="$label" -v w="$wall" -v p="$PAR" -v f="$failed" -v a="$(pct "$pre.lat" 50)" \
        -v b="$(pct "$pre.lat" 95)" -v c="$(pct "$pre.lat" 100)" 'BEGIN {
        printf "  %-18s %8d %8.1f %8s %8s %8s %7d\n", l, w, w / p, a, b, c, f }'
    if [ -s "$pre.err" ]; then
        echo "    failures of $label, by message:"
        sed 's/[0-9a-f]\{8\}-[0-9]*//g' "$pre.err" | sort | uniq -c | sort -rn | head -3 | sed 's/^/    /'
    fi
done
awk -v a="$w_pg" -v b="$w_sq" 'BEGIN { printf "  PostgreSQL+rbd / SQLite+dir (wall) = %.2f\n", a / b }'
echo "  monitor connections that timed out (after 3 attempts): $(grep -c 'Connection timed out' pg-.err)"
echo "  catalog VMs (warm-up clone included): PostgreSQL $n_pg, SQLite $n_sq; rbd children of the PostgreSQL store's copies: $kids"
if VMCLONE_HOME=$W/pg $VMC fsck -q >/dev/null 2>&1; then
    echo "  fsck (PostgreSQL + rbd): clean"
else
    echo "  fsck (PostgreSQL + rbd): NOT clean"
fi
# the EXIT traps (ceph_stop, pg_stop) kill by pid and may meet a daemon
# that is gone already: not a failure of the bench
set +e
