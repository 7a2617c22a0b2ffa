#!/bin/bash
# bench-catalog.sh - the management layer (catalog included) against
# bare qemu-img, in the same run, interleaved (abtime.py), ratios vs the
# first command:
#   1. one `vm-clone --linked --name X` (open the store, recover, journal,
#      two commits, the overlay) vs one `qemu-img create -b`;
#   2. 100 linked clones in one `vm-clone clone --count 100` vs 100
#      `qemu-img create -b` calls;
#   3. 50 parallel `vm-clone --linked` processes vs 50 parallel
#      `qemu-img create -b`.
# The template is imported once and its copy in the primary pool made
# before timing (first use is a one-off copy). Deleting the clones
# between rounds is untimed.
#   usage: bench/bench-catalog.sh        (BENCH_* variables: common.sh)
. "$(dirname "$0")/common.sh"
make_base
export VMCLONE_HOME=$BENCH_DIR/store
rm -rf "$VMCLONE_HOME" m
$VMC init -q
mkdir m
Q="qemu-img"
$VMC template import -q bt base.qcow2
$VMC config set default-template bt
$VMC --linked -q --name warm   # makes the pool copy
COPY=$(ls "$VMCLONE_HOME"/primary/copy-bt-*.qcow2)

$AB --rounds $((ROUNDS * 6)) --title "one linked clone (whole CLI process, catalog included)" \
    "qemu-img create -b=$Q create -q -f qcow2 -b $COPY -F qcow2 m/q.qcow2::rm -f m/q.qcow2" \
    "vm-clone --linked --name=$VMC --linked -q --name one::$VMC rm -q one 2>/dev/null || true"

$AB --title "100 linked clones" \
    "100 x qemu-img create -b=sh -c 'for i in \$(seq 1 100); do $Q create -q -f qcow2 -b $COPY -F qcow2 m/q\$i.qcow2; done'::rm -f m/*" \
    "vm-clone clone --count 100=$VMC clone bt -q --name 'c-%d' --count 100::$VMC rm -q \$($VMC list --json | python3 -c 'import json,sys; print(\" \".join(v[\"name\"] for v in json.load(sys.stdin) if v[\"name\"].startswith(\"c-\")))') 2>/dev/null || true"

$AB --title "50 parallel CLI clones" \
    "50 x qemu-img create -b &=sh -c 'for i in \$(seq 1 50); do $Q create -q -f qcow2 -b $COPY -F qcow2 m/p\$i.qcow2 & done; wait'::rm -f m/*" \
    "50 x vm-clone --linked &=sh -c 'for i in \$(seq 1 50); do $VMC --linked -q --name p-\$i & done; wait; [ \$($VMC list --json | grep -c \"\\\"name\\\": \\\"p-\") = 50 ]'::$VMC rm -q \$(seq -f 'p-%g' 1 50) 2>/dev/null || true"
$VMC fsck -q >/dev/null && echo "fsck after the runs: clean"
