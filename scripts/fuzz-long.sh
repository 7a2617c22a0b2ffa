#!/bin/bash
# fuzz-long.sh - the long fuzz run (reliability.md §6 tests 10, 11, 17):
# every libFuzzer target for FUZZ_CPU_SECONDS CPU-seconds (default 600),
# spread over FUZZ_JOBS parallel jobs (default 1). Every crash, leak,
# timeout or OOM found is copied into tests/fuzz/corpus/TARGET/ as a
# regression seed (named after the kind of finding and its hash), so the
# meson 'fuzz' suite replays it from then on; commit those files.
#   usage: scripts/fuzz-long.sh [TARGET...]   (default: all five)
#   env:   FUZZ_CPU_SECONDS=600 FUZZ_JOBS=1 FUZZ_OUT=build-fuzz-long
#          FUZZ_NO_BUILD=1 (reuse the binaries in FUZZ_OUT)
# Exit status: 0 when no target found anything, 1 otherwise.
set -u
cd "$(dirname "$0")/.."
cpu_secs=${FUZZ_CPU_SECONDS:-600}
jobs=${FUZZ_JOBS:-1}
out=${FUZZ_OUT:-build-fuzz-long}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-qcow2-open fuzz-nbd fuzz-ops fuzz-chain fuzz-vmdk)
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    tests/fuzz/build-fuzzer.sh "$out" "${targets[@]}" || exit 2
fi
found=0
for t in "${targets[@]}"; do
    seeds=tests/fuzz/corpus/${t#fuzz-}
    work=$out/corpus-$t
    arts=$out/artifacts-$t
    mkdir -p "$work" "$arts"
    # max_total_time is wall-clock: jobs in parallel share the CPU budget
    secs=$(( cpu_secs / jobs ))
    echo "== $t: $cpu_secs CPU-seconds ($jobs job(s) x $secs s)"
    par=()
    [ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
    "$out/$t" -max_total_time="$secs" "${par[@]}" \
        -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 \
        -artifact_prefix="$arts/" -print_final_stats=1 \
        "$work" "$seeds" >"$out/$t.log" 2>&1
    for f in "$arts"/crash-* "$arts"/leak-* "$arts"/timeout-* "$arts"/oom-*; do
        [ -e "$f" ] || continue
        cp "$f" "$seeds/$(basename "$f")"
        echo "$t: finding kept as regression seed $seeds/$(basename "$f")"
        found=1
    done
    grep -hE 'stat::number_of_executed_units' "$out/$t.log" "$out"/fuzz-*.log 2>/dev/null | tail -1
done
exit $found
