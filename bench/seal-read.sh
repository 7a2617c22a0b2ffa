#!/bin/bash
# seal-read: 4 KiB reads (qd 1) through a linked clone of a sealed
# template vs a clone of the same template unsealed. The sealed run pays
# chunk verification on first touch, so it is also run after a warm-up
# pass (vmc-bench -W reads the whole disk first, untimed in-process).
. "$(dirname "$0")/common.sh"
make_base
N=${BENCH_READS:-20000}
STEP=65540096
if [ ! -f sealed/clone.qcow2 ]; then
    rm -rf sealed unsealed; mkdir sealed unsealed
    cp base.qcow2 sealed/tpl.qcow2; cp base.qcow2 unsealed/tpl.qcow2
    "$VMC" img seal sealed/tpl.qcow2 >/dev/null
    "$VMC" img create -q -f qcow2 -b tpl.qcow2 -F qcow2 sealed/clone.qcow2
    "$VMC" img create -q -f qcow2 -b tpl.qcow2 -F qcow2 unsealed/clone.qcow2
fi
$AB --title "4 KiB reads, qd1, $N reads, clone of an unsealed vs sealed template (cold: includes verification)" \
    "unsealed=$VBENCH -f qcow2 -c $N -s 4k -S $STEP unsealed/clone.qcow2" \
    "sealed=$VBENCH -f qcow2 -c $N -s 4k -S $STEP sealed/clone.qcow2"
# After first touch: in-process time of the read loop only (-W warms up).
for k in 1 2 3; do
    for t in unsealed sealed; do
        printf '%-9s after warm-up: %s\n' "$t" \
            "$($VBENCH -W -f qcow2 -c $N -s 4k -S $STEP $t/clone.qcow2 | tail -1)"
    done
done
