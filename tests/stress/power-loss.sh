#!/bin/bash
# power-loss: the full run of reliability test 4 (simulated power loss,
# tests/unit/test-power-loss.c): 1,000 operations and 50 flushes on a
# linked clone, replayed at every sync boundary and at 220 random cuts
# with the unflushed tail kept, kept/dropped and torn: >= 750 recovered
# images per cluster size (64 KiB and 512 bytes), each opened, checked
# (ours; qemu-img check on every 25th) and read against the oracle.
# The PR subset is the unit test `power-loss` (meson test -C build
# power-loss).
#
# usage: tests/stress/power-loss.sh [BUILD_DIR] [SEED]
set -eu
build=${1:-build}
seed=${2:-$(date +%s)}
bin=$build/tests/test-power-loss
[ -x "$bin" ] || { echo "power-loss: no $bin (ninja -C $build)" >&2; exit 1; }
total=0
for cs in 65536 512; do
    out=$("$bin" --full --cluster-size "$cs" --seed "$seed") || {
        echo "$out" >&2
        echo "power-loss: FAILED (cluster size $cs, seed $seed)" >&2
        exit 1
    }
    echo "$out"
    n=$(echo "$out" | sed -n 's/^\([0-9]*\) recovered images checked$/\1/p')
    [ "${n:-0}" -ge 750 ] || { echo "power-loss: only $n images" >&2; exit 1; }
    total=$((total + n))
done
echo "power-loss: $total recovered images, all clean (seed $seed)"
