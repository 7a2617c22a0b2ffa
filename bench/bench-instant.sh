#!/bin/bash
# bench-instant.sh - instant clones (issue 16) against cold boots, in the
# same run, QEMU under TCG, the guest of tests/nbd/guest-lib.sh's
# instant_guest (Debian's generic kernel, 256 MiB, 1 vCPU):
#   1. start -> guest answering, median of RUNS (default 5), cold and
#      instant runs taken in turn: the wall time of "vm-clone start VM
#      --direct --wait-console TEXT" (it returns when TEXT is on the
#      serial console): a cold boot of a linked clone until the guest
#      prints TEMPLATE-READY, an instant clone of the frozen template
#      until it prints CLONE-ID (its answer to the new fw_cfg id; the
#      guest polls every 0.1 s). Each guest is stopped before the next.
#   2. the sum of PSS (/proc/PID/smaps_rollup) of the QEMU processes of
#      N concurrent guests, N in COUNTS (default "1 5 10"), all started
#      at once (start --detach --wait-console), 3 s after the last one
#      answered, cold vs instant; plus the template's RAM file, counted
#      once (its allocated size in /dev/shm, where the template's RAM file
#      is, as by default), and the cost of one more guest
#      ((PSS(max N) - PSS(min N)) / (max N - min N)).
#   usage: bench/bench-instant.sh [RUNS] [COUNTS]
# Needs a built tree (build/) and the guest cache of the boot tests
# (build/tests/nbd/guest-cache; built on first use). Every guest is
# stopped on exit, also on failure or ^C. Prints Markdown tables
# (docs/instant-clones.md has the last ones) and the load averages.
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
load() { cut -d' ' -f1 /proc/loadavg; }
# the QEMU child of a detached start's supervisor
qemu_of() {
    local c
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        case $(cat /proc/"$c"/comm 2>/dev/null) in qemu-system*) echo "$c"; return ;; esac
    done
}
pss_kib() { awk '/^Pss:/ { print $2 }' /proc/"$1"/smaps_rollup 2>/dev/null || echo 0; }
SUPS=()     # supervisors of detached starts, stopped at exit
stop_all() {
    local p i
    for p in "${SUPS[@]+"${SUPS[@]}"}"; do kill "$p" 2>/dev/null; done
    for p in "${SUPS[@]+"${SUPS[@]}"}"; do
        for i in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    SUPS=()
}
cleanup_fn stop_all
# the template's RAM file in tmpfs, as by default (instant-lib.sh keeps
# the tests' on the scratch disk: no writeback of a fresh RAM file here)
MEMDIR=$(mktemp -d /dev/shm/vmc-bench-instant.XXXXXX) || fail "no /dev/shm"
cleanup_fn "rm -rf '$MEMDIR'"
# up VM TEXT ARGS...: start VM detached until TEXT; its supervisor in
# $SUP (added to SUPS); the seconds it took in $UP_T
up() {
    local vm=$1 text=$2 t0 out
    shift 2
    t0=$(now)
    out=$("$VMCLONE" start "$vm" --direct --accel tcg --wait-console "$text" \
          --wait-timeout 1800 "$@" < /dev/null 2> "$T/$vm.err") ||
        fail "start $vm: exit $?: $(tail -5 "$T/$vm.err")"
    UP_T=$(echo "$(now) - $t0" | bc)
    SUP=$(echo "$out" | sed -n "s/.*'kill \([0-9]*\)'.*/\1/p")
    [ -n "$SUP" ] || fail "start $vm: no pid in: $out"
    SUPS+=("$SUP")
}

cold_args=(--kernel "$IKERNEL" --initrd "$IINITRD"
           --append "console=ttyS0 quiet panic=-1 no_timer_check")

# the template, frozen once booted
load0=$(load)
"$VMCLONE" start tv --freezable --memory-dir "$MEMDIR" --direct --accel tcg \
    --wait-console TEMPLATE-READY --wait-timeout 1800 \
    --kernel "$IKERNEL" --initrd "$IINITRD" \
    --append "console=ttyS0 quiet panic=-1 no_timer_check vmctemplate" \
    < /dev/null > tv.out 2> tv.err || fail "template start: $(cat tv.err)"
SUPS+=("$(sed -n "s/.*'kill \([0-9]*\)'.*/\1/p" tv.out)")
vmc template freeze tv --name IT -q || fail "freeze"
stop_all        # QEMU quit at the freeze: its supervisor ends
read -r ram _ < <(frozen_files IT)

# 1. start -> answer
cold=() inst=()
for r in $(seq 1 "$RUNS"); do
    vmc clone tiny --name "cold-$r" -q || fail "clone"
    vmc clone IT --instant --name "inst-$r" -q || fail "clone --instant"
    up "cold-$r" TEMPLATE-READY "${cold_args[@]}"
    cold+=("$UP_T")
    stop_all
    up "inst-$r" CLONE-ID
    inst+=("$UP_T")
    stop_all
done
cm=$(printf '%s\n' "${cold[@]}" | median)
im=$(printf '%s\n' "${inst[@]}" | median)
load1=$(load)
# printed now: the memory runs take long on a loaded machine
echo "| start -> guest answering (median of $RUNS) | cold boot | instant clone | ratio |"
echo "|---|---|---|---|"
printf '| seconds | %.3f | %.3f | %.3f |\n' "$cm" "$im" "$(echo "$im / $cm" | bc -l)"
echo
echo "cold runs: ${cold[*]}; instant runs: ${inst[*]}; load average $load0 (start), $load1 (after the timings)"
echo

# 2. memory of N concurrent guests, all started at once
declare -A pss
for n in $COUNTS; do
    for kind in cold inst; do
        pids=()
        for i in $(seq 1 "$n"); do
            vm=$kind-m$n-$i
            if [ "$kind" = cold ]; then
                vmc clone tiny --name "$vm" -q || fail "clone $vm"
                ( up "$vm" TEMPLATE-READY "${cold_args[@]}"; echo "$SUP" > "$T/$vm.sup" ) &
            else
                vmc clone IT --instant --name "$vm" -q || fail "clone $vm"
                ( up "$vm" CLONE-ID; echo "$SUP" > "$T/$vm.sup" ) &
            fi
            pids+=($!)
        done
        ok=1
        for p in "${pids[@]}"; do wait "$p" || ok=0; done
        sum=0
        for i in $(seq 1 "$n"); do
            sup=$(cat "$T/$kind-m$n-$i.sup" 2>/dev/null) && SUPS+=("$sup")
        done
        [ "$ok" = 1 ] || fail "a start of $n $kind guests failed"
        sleep 3
        for p in "${SUPS[@]}"; do
            q=$(qemu_of "$p")
            [ -n "$q" ] || fail "no QEMU under $p"
            sum=$((sum + $(pss_kib "$q")))
        done
        pss[$kind-$n]=$((sum / 1024))
        echo "$n $kind guests: sum of PSS ${pss[$kind-$n]} MiB (load $(load))" >&2
        stop_all
    done
done
ramalloc=$(( $(stat -c %b "$ram") * $(stat -c %B "$ram") / 1048576 ))
load2=$(load)

echo "| concurrent guests | cold: sum of PSS (per guest) | instant: sum of PSS (per guest) |"
echo "|---|---|---|"
for n in $COUNTS; do
    echo "| $n | ${pss[cold-$n]} MiB ($((pss[cold-$n] / n))) | ${pss[inst-$n]} MiB ($((pss[inst-$n] / n))) |"
done
echo
set -- $COUNTS
lo=$1
hi=${!#}
if [ "$hi" -gt "$lo" ]; then
    cx=$(( (pss[cold-$hi] - pss[cold-$lo]) / (hi - lo) ))
    ix=$(( (pss[inst-$hi] - pss[inst-$lo]) / (hi - lo) ))
    echo "one more guest (from $lo to $hi): cold $cx MiB, instant $ix MiB (ratio $(echo "scale=3; $ix / $cx" | bc))"
fi
echo "template RAM file (allocated in tmpfs, counted once): $ramalloc MiB; load average $load2 (after the memory runs)"
