#!/bin/bash
# chain-read: 4 KiB reads (qd 1) through backing chains of depth 1, 16
# and 64, ours (bench/vmc-bench on libvmclone) vs `qemu-img bench`, same
# (and 128; BENCH_DEPTHS overrides) pattern: N reads 62.5 MiB apart (step 65540096, so they land in
# different clusters and wrap around the disk).  Whole-process times.
# Also, per depth: opening the whole chain plus one 4 KiB read, read-only
# (`vm-clone img io -r` vs `qemu-io -r`), and `info --backing-chain`.
. "$(dirname "$0")/common.sh"
make_base
N=${BENCH_READS:-20000}
STEP=65540096
for depth in ${BENCH_DEPTHS:-1 16 64 128}; do
    if [ ! -f chain$depth/l$depth.qcow2 ]; then
        rm -rf chain$depth; mkdir chain$depth
        prev=../base.qcow2
        for d in $(seq 1 $depth); do
            qemu-img create -q -f qcow2 -b "$prev" -F qcow2 chain$depth/l$d.qcow2
            # each layer owns 4 clusters of its own
            cmds=()
            for k in 1 2 3 4; do
                cmds+=(-c "write -P $d $(( (d * 4 + k) * 37 % (VSIZE_MB / 2) ))M 64k")
            done
            qemu-io -f qcow2 "${cmds[@]}" chain$depth/l$d.qcow2 >/dev/null
            prev=l$d.qcow2
        done
    fi
    top=chain$depth/l$depth.qcow2
    $AB --rounds $((ROUNDS * 4)) --title "open a chain of depth $depth + one 4 KiB read; info --backing-chain" \
        "qemu-io -r=qemu-io -r -f qcow2 -c 'read -q 0 4k' $top" \
        "vm-clone img io -r=$VMC img io -r -f qcow2 $top -c 'read 0 4k'" \
        "qemu-img info --backing-chain=qemu-img info --backing-chain $top" \
        "vm-clone img info --backing-chain=$VMC img info --backing-chain $top"
    $AB --title "4 KiB reads, qd1, $N reads, chain depth $depth" \
        "qemu-img bench=qemu-img bench -f qcow2 -c $N -s 4k -S $STEP -d 1 -t writeback $top" \
        "vmc-bench=$VBENCH -f qcow2 -c $N -s 4k -S $STEP $top"
done
