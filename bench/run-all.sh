#!/bin/bash
# run-all: every benchmark, one base image shared between them.
#   BENCH_VSIZE_MB=512 BENCH_EXTENTS=4 BENCH_EXTENT_MB=16 BENCH_ROUNDS=3 bench/run-all.sh   # quick
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${BENCH_DIR:-}" ]; then
    export BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmc-bench.XXXXXX")
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
for b in clone-create full-clone chain-read first-write seal-read; do
    bash "$here/$b.sh"
done
