# bench/common.sh - shared settings for the bench scripts (sourced).
# Sizes come from the environment so a quick run is possible:
#   BENCH_BUILD      build dir holding src/cli/vm-clone and bench/vmc-bench (build)
#   BENCH_DIR        scratch dir (a fresh temp dir); the base image is cached there
#   BENCH_ROUNDS     rounds per comparison (5)
#   BENCH_VSIZE_MB   virtual size of the base (4096)
#   BENCH_EXTENTS    number of random-data extents in the base (16)
#   BENCH_EXTENT_MB  size of each extent (64), one every VSIZE/EXTENTS
#   BENCH_READS      4 KiB reads per chain-read run (20000)
#   BENCH_WRITES     4 KiB writes per first-write run (5000)
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "$ROOT/${BENCH_BUILD:-build}" && pwd)
VMC=$BUILD/src/cli/vm-clone
VBENCH=$BUILD/bench/vmc-bench
ROUNDS=${BENCH_ROUNDS:-5}
VSIZE_MB=${BENCH_VSIZE_MB:-4096}
EXTENTS=${BENCH_EXTENTS:-16}
EXTENT_MB=${BENCH_EXTENT_MB:-64}
AB="python3 $ROOT/bench/abtime.py --rounds $ROUNDS"
for x in "$VMC" "$VBENCH"; do
    [ -x "$x" ] || { echo "bench: $x not built (ninja -C $BUILD)" >&2; exit 1; }
done
command -v qemu-img >/dev/null || { echo "bench: qemu-img not installed" >&2; exit 1; }
if [ -z "${BENCH_DIR:-}" ]; then
    BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmc-bench.XXXXXX")
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"

# make_base: base.qcow2 (made by qemu-img, as in notes/perf-baseline.md):
# a sparse raw disk with EXTENTS extents of random data, one at the start
# of every VSIZE/EXTENTS stretch, converted to qcow2 with 64 KiB clusters.
make_base() {
    local stamp="$VSIZE_MB-$EXTENTS-$EXTENT_MB"
    [ -f base.qcow2 ] && [ "$(cat base.stamp 2>/dev/null)" = "$stamp" ] && return 0
    echo "making base: ${VSIZE_MB} MiB virtual, $EXTENTS x $EXTENT_MB MiB random data" >&2
    rm -f base.raw base.qcow2
    truncate -s "${VSIZE_MB}M" base.raw
    local stride=$((VSIZE_MB / EXTENTS)) i
    for i in $(seq 0 $((EXTENTS - 1))); do
        head -c "${EXTENT_MB}M" /dev/urandom |
            dd of=base.raw bs=1M seek=$((i * stride)) conv=notrunc status=none
    done
    qemu-img convert -f raw -O qcow2 base.raw base.qcow2
    rm -f base.raw
    echo "$stamp" > base.stamp
}
