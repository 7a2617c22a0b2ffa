#!/bin/bash
# bench-instant.sh - instant clones (issue 16) against cold boots, in the
# same run, QEMU under TCG, the guest of tests/nbd/guest-lib.sh's
# instant_guest (Debian's generic kernel, 256 MiB, 1 vCPU):
#   1. start -> guest answering, median of RUNS (default 5): a cold boot
#      ("vm-clone start" of a linked clone until the guest prints
#      TEMPLATE-READY) vs an instant clone ("vm-clone start" of a clone of
#      the frozen template until the guest prints CLONE-ID, its answer to
#      the new fw_cfg id; the guest polls every 0.1 s);
#   2. the sum of PSS (/proc/PID/smaps_rollup) of the QEMU processes of
#      N concurrent guests, N in COUNTS (default "1 5 10"), 3 s after the
#      last one answered, cold vs instant (plus the template's RAM file,
#      counted once: its allocated size in tmpfs).
#   usage: bench/bench-instant.sh [RUNS] [COUNTS]
# Needs a built tree (build/) and the guest cache of the boot tests
# (build/tests/nbd/guest-cache; built on first use). Prints a Markdown
# table (docs/instant-clones.md has the last one).
set -u
RUNS=${1:-5}
COUNTS=${2:-1 5 10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export VMCLONE=${VMCLONE:-$ROOT/build/src/cli/vm-clone}
export BOOT_CACHE=${BOOT_CACHE:-$ROOT/build/tests/nbd/guest-cache}
TEST_NAME=bench-instant
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/nbd/guest-lib.sh"
. "$ROOT/tests/instant/instant-lib.sh"
instant_guest
inst_store 256

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
qemu_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . | head -1; }
pss_kib() { awk '/^Pss:/ { print $2 }' /proc/"$1"/smaps_rollup 2>/dev/null || echo 0; }

# run_until NAME VM PATTERN ARGS...: seconds from start to PATTERN in
# $RUN_T; the start's pid in $BG_PID (left running). Not in a $(...):
# the caller stops the start by its pid.
run_until() {
    local n=$1 vm=$2 pat=$3 t0
    shift 3
    t0=$(now)
    start_bg "$n" "$vm" --direct "$@"
    wait_for "$T/$n.log" "$pat" 900 "$BG_PID"
    RUN_T=$(echo "$(now) - $t0" | bc)
}

cold_args=(--kernel "$IKERNEL" --initrd "$IINITRD"
           --append "console=ttyS0 quiet panic=-1 no_timer_check")

# the template
start_bg tv tv --freezable --memory-dir "$MEMDIR" --direct "${cold_args[@]}" \
    --append "console=ttyS0 quiet panic=-1 no_timer_check vmctemplate"
tvpid=$BG_PID
wait_for tv.log TEMPLATE-READY 900 "$tvpid"
vmc template freeze tv --name IT -q || fail "freeze"
wait "$tvpid"
read -r ram _ < <(frozen_files IT)

# 1. start -> answer
cold=() inst=()
for r in $(seq 1 "$RUNS"); do
    vmc clone tiny --name "cold-$r" -q || fail "clone"
    vmc clone IT --instant --name "inst-$r" -q || fail "clone --instant"
    run_until "cold-$r" "cold-$r" TEMPLATE-READY "${cold_args[@]}"
    cold+=("$RUN_T")
    stop_bg "$BG_PID"
    run_until "inst-$r" "inst-$r" CLONE-ID
    inst+=("$RUN_T")
    stop_bg "$BG_PID"
done
cm=$(printf '%s\n' "${cold[@]}" | median)
im=$(printf '%s\n' "${inst[@]}" | median)
load1=$(cut -d' ' -f1 /proc/loadavg)
# printed now: the memory runs take long on a loaded machine
echo "| start -> guest answering (median of $RUNS) | cold boot | instant clone | ratio |"
echo "|---|---|---|---|"
printf '| seconds | %.3f | %.3f | %.3f |\n' "$cm" "$im" "$(echo "$im / $cm" | bc -l)"
echo

# 2. memory of N concurrent guests
declare -A pss
for n in $COUNTS; do
    for kind in cold inst; do
        pids=()
        for i in $(seq 1 "$n"); do
            vm=$kind-m$n-$i
            if [ "$kind" = cold ]; then
                vmc clone tiny --name "$vm" -q
                start_bg "$vm" "$vm" --direct "${cold_args[@]}"
            else
                vmc clone IT --instant --name "$vm" -q
                start_bg "$vm" "$vm" --direct
            fi
            pids+=("$BG_PID")
        done
        pat=$([ "$kind" = cold ] && echo TEMPLATE-READY || echo CLONE-ID)
        for i in $(seq 1 "$n"); do
            wait_for "$T/$kind-m$n-$i.log" "$pat" 1800 "${pids[$((i - 1))]}"
        done
        sleep 3
        sum=0
        for p in "${pids[@]}"; do
            q=$(qemu_of "$p")
            sum=$((sum + $(pss_kib "$q")))
        done
        pss[$kind-$n]=$((sum / 1024))
        for p in "${pids[@]}"; do stop_bg "$p"; done
    done
done
ramalloc=$(( $(stat -c %b "$ram") * $(stat -c %B "$ram") / 1048576 ))
load2=$(cut -d' ' -f1 /proc/loadavg)

echo "| concurrent guests | cold: sum of PSS (per guest) | instant: sum of PSS (per guest) |"
echo "|---|---|---|"
for n in $COUNTS; do
    echo "| $n | ${pss[cold-$n]} MiB ($((pss[cold-$n] / n))) | ${pss[inst-$n]} MiB ($((pss[inst-$n] / n))) |"
done
echo
echo "template RAM file (allocated, counted once): $ramalloc MiB; cold runs: ${cold[*]}; instant runs: ${inst[*]}; load average ${load1} (timings), ${load2} (memory)"
