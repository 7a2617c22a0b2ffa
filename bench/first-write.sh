#!/bin/bash
# first-write: 4 KiB writes into a FRESH linked clone (every write
# allocates a cluster and copies the rest from the base), qd 1, ours
# (bench/vmc-bench -w) vs `qemu-img bench -w`, same pattern; and the
# second pass (overwrites of already-allocated clusters) for scale.
. "$(dirname "$0")/common.sh"
make_base
N=${BENCH_WRITES:-5000}
STEP=65540096
fresh() { echo "rm -f $1 && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 $1"; }
$AB --title "first writes into a fresh linked clone, $N x 4 KiB, qd1" \
    "qemu-img bench -w=qemu-img bench -w -f qcow2 -c $N -s 4k -S $STEP -d 1 -t writeback q.qcow2::$(fresh q.qcow2)" \
    "vmc-bench -w=$VBENCH -w -f qcow2 -c $N -s 4k -S $STEP o.qcow2::$(fresh o.qcow2)"
$AB --title "second pass (overwrites), $N x 4 KiB, qd1" \
    "qemu-img bench -w=qemu-img bench -w -f qcow2 -c $N -s 4k -S $STEP -d 1 -t writeback q.qcow2" \
    "vmc-bench -w=$VBENCH -w -f qcow2 -c $N -s 4k -S $STEP o.qcow2"
qemu-img check -q o.qcow2 || { echo "our clone does not check clean!" >&2; exit 1; }
rm -f q.qcow2 o.qcow2
