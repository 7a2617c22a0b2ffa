#!/bin/bash
# bench-freeze.sh - the disk side of "template freeze" (issue 16) on a
# SIZE (default 2 GiB) disk whose template holds DATA (default 1 GiB) and
# whose VM wrote 16 MiB, QEMU under TCG without a guest (the BIOS waits):
#   - freeze in place (src/catalog/freeze.c: the VM's layer becomes the
#     template's, sealed with the base's digests for what it does not
#     hold): the whole `template freeze` process, QEMU's save included,
#     and the bytes the store grew by;
#   - what a freeze did before: `template create --from-vm` of the same
#     (stopped) VM, a sealed flat copy of its disk into the secondary pool;
#   - the peer: `qemu-img convert -O qcow2` of the VM's disk (a flat copy,
#     no seal).
# Medians of RUNS (default 3) rounds, in ms; the page cache is warm (the
# same files each round). Figures only: fails only when a step fails.
#   usage: bench/bench-freeze.sh [RUNS] [SIZE_MiB] [DATA_MiB]
set -u
RUNS=${1:-3}
SIZE=${2:-2048}
DATA=${3:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export VMCLONE=${VMCLONE:-$ROOT/build/src/cli/vm-clone}
TEST_NAME=bench-freeze
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/instant/instant-lib.sh"
requires qemu-io --version

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
top() {
    sqlite3 "$VMCLONE_HOME/catalog.db" "SELECT o.path FROM volume_owners o \
        JOIN volumes v ON v.id = o.id JOIN vms m ON m.id = v.vm_id WHERE \
        m.name = '$1' AND v.top = 1"
}

vmc init -q || fail "init"
qemu-img create -q -f qcow2 base.qcow2 "${SIZE}M"
qemu-io -f qcow2 -c "write -P 0x5a 0 ${DATA}M" base.qcow2 > /dev/null
ok vmc template import tmpl base.qcow2 --memory 64 --cpus 1 -q
: > in-place.ms; : > from-vm.ms; : > convert.ms; : > grew.kib
for r in $(seq 1 "$RUNS"); do
    ok vmc clone tmpl --name "v$r" -q
    qemu-io -f qcow2 -c 'write -P 0x77 100M 16M' "$(top "v$r")" > /dev/null
    # the copy a freeze made before, and the peer's copy
    t0=$(now); ok vmc template create "old$r" --from-vm "v$r" -q; t1=$(now)
    ms "$t0" "$t1" >> from-vm.ms
    t0=$(now); qemu-img convert -O qcow2 "$(top "v$r")" "conv$r.qcow2"; t1=$(now)
    ms "$t0" "$t1" >> convert.ms
    rm -f "conv$r.qcow2"
    ok vmc template rm "old$r" -q
    # freeze in place
    start_freezable "v$r" "v$r"
    before=$(du -sk "$VMCLONE_HOME" | cut -f1)
    t0=$(now); ok vmc template freeze "v$r" --name "frozen$r" -q; t1=$(now)
    ms "$t0" "$t1" >> in-place.ms
    wait "$BG_PID" || fail "the freezable start of v$r exited $?"
    echo $(( $(du -sk "$VMCLONE_HOME" | cut -f1) - before )) >> grew.kib
done
echo "template freeze of a ${SIZE} MiB disk (template: ${DATA} MiB of data; the VM wrote 16 MiB), median of $RUNS, load $(cut -d' ' -f1 /proc/loadavg)"
printf '  %-58s %8s ms\n' "freeze in place (whole process, QEMU's save included)" "$(median < in-place.ms)"
printf '  %-58s %8s KiB\n' "  the store grew by (state file, seal sidecar, overlay)" "$(median < grew.kib)"
printf '  %-58s %8s ms\n' "template create --from-vm (the copy freeze made before)" "$(median < from-vm.ms)"
printf '  %-58s %8s ms\n' "peer: qemu-img convert -O qcow2 of the VM's disk" "$(median < convert.ms)"
awk -v a="$(median < in-place.ms)" -v b="$(median < convert.ms)" \
    'BEGIN { printf "  in place / qemu-img convert = %.2f\n", a / b }'
