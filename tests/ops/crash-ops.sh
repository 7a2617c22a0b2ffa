#!/bin/bash
# crash-ops: flatten, relink and consolidate (commit, pull, new layer),
# seal, and linked and full clones, under an injected crash (_exit at the
# Nth pwrite, sync or rename of the host I/O layer, VMCLONE_FAULT=OP:N:crash;
# a copy_file_range or reflink counts as a pwrite, a directory sync as a
# sync) and under ENOSPC from the Nth pwrite on. After every injection:
#   - the top image reads exactly as before (these operations never change
#     the guest view, so "before or after" is one content);
#   - every image is check-clean or only leaks clusters (exit 0 or 3);
#   - the chain opens: no image points at a missing parent;
#   - a clone is either absent or complete under its final name (equal to
#     its source, check-clean), and its source is untouched.
# N runs over every call up to 8, then grows by half each step, until the
# operation completes without reaching the fault.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

mkdir pristine
( cd pristine
  qemu-img create -q -f qcow2 base.qcow2 8M
  qemu-io -f qcow2 -c 'write -P 0xaa 0 4M' base.qcow2 >/dev/null
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 l1.qcow2
  qemu-io -f qcow2 -c 'write -P 1 0 1M' -c 'write -z 3M 256k' l1.qcow2 >/dev/null
  qemu-img create -q -f qcow2 -b l1.qcow2 -F qcow2 l2.qcow2
  qemu-io -f qcow2 -c 'write -P 2 512k 1M' -c 'write -P 2 6M 128k' l2.qcow2 >/dev/null
  qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 top.qcow2
  qemu-io -f qcow2 -c 'write -P 4 2M 64k' top.qcow2 >/dev/null
  qemu-img convert -O qcow2 top.qcow2 full.qcow2
  qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 clone.qcow2
  qemu-io -f qcow2 -c 'write -P 5 1M 4k' clone.qcow2 >/dev/null )
raw_of pristine/top.qcow2 top.raw
raw_of pristine/clone.qcow2 clone.raw

verify() {   # DIR IMG REF WHAT
    local f rc
    (cd "$1" && qemu-img info --backing-chain "$2" >/dev/null 2>&1) ||
        fail "$4: the chain of $2 does not open"
    (cd "$1" && "$VMCLONE" img info --backing-chain "$2" >/dev/null 2>"$T/open.err") ||
        fail "$4: vm-clone cannot open $2: $(cat "$T/open.err")"
    qemu_same "$1/$2" "$3"
    for f in "$1"/*.qcow2; do
        rc=0
        qemu-img check -q "$f" >/dev/null 2>&1 || rc=$?
        [ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "$4: qemu-img check $f exited $rc"
    done
}

# fault_loop WHAT CHECK ARGS...: run `vm-clone ARGS` in a fresh copy w/ of
# pristine/ with every injection point, and call CHECK "WHAT (SPEC, exit
# RC)" after each run; a faulted run must crash (99) or fail cleanly (1).
fault_loop() {
    local what=$1 check=$2 kind n rc runs=0
    shift 2
    for kind in pwrite:crash sync:crash rename:crash pwrite:ENOSPC; do
        n=1
        while :; do
            rm -rf w; cp -a pristine w
            local spec=${kind%%:*}:$n:${kind#*:}
            [ "${kind#*:}" = ENOSPC ] && spec=${kind%%:*}:$n+:ENOSPC
            rc=0
            (cd w && VMCLONE_FAULT=$spec "$VMCLONE" "$@" >/dev/null 2>"$T/op.err") || rc=$?
            runs=$((runs + 1))
            grep -qE 'Sanitizer|runtime error' "$T/op.err" && fail "$what ($spec): sanitizer report"
            "$check" "$what ($spec, exit $rc)" "$rc"
            [ "$rc" = 0 ] && break
            case $kind in
            *crash) [ "$rc" = 99 ] || fail "$what ($spec): exit $rc: $(cat "$T/op.err")" ;;
            *) [ "$rc" = 1 ] && [ -s "$T/op.err" ] || fail "$what ($spec): exit $rc without a clean error" ;;
            esac
            # CRASH_STEPS=short (the sanitizer run of .ci/run): doubling
            if [ "${CRASH_STEPS:-}" = short ]; then
                if [ "$n" -lt 4 ]; then n=$((n + 1)); else n=$((n * 2)); fi
            elif [ "$n" -lt 8 ]; then n=$((n + 1)); else n=$((n + n / 2)); fi
            [ "$n" -lt 100000 ] || fail "$what: the fault loop does not end"
        done
    done
    note "$what: $runs injections survived"
}

# run_faults WHAT IMG REF ARGS...: an operation on IMG that keeps its view.
check_in_place() { verify w "$IMG" "$REF" "$1"; }
run_faults() {
    IMG=$2 REF=$3
    local what=$1
    shift 3
    fault_loop "$what" check_in_place "$@"
}

# run_create_faults WHAT SRC REF ARGS... (NEW names: the files to check):
# an operation that makes new files from SRC.
check_created() {
    local f
    [ "$(sha256sum < "w/$SRC")" = "$SUM0" ] || fail "$1: the source changed"
    for f in $NEW; do
        if [ -e "w/$f" ]; then
            (cd w && qemu-img check -q "$f" >/dev/null 2>&1) ||
                fail "$1: $f is visible but not check-clean"
            qemu_same "w/$f" "$REF"
        elif [ "$2" = 0 ]; then
            fail "$1: $f missing after a clean run"
        fi
    done
}
run_create_faults() {
    SRC=$2 REF=$3
    SUM0=$(sha256sum < "pristine/$SRC")
    local what=$1
    shift 3
    fault_loop "$what" check_created "$@"
}

raw_of pristine/full.qcow2 full.raw
NEW="c1.qcow2 c2.qcow2 c3.qcow2" \
    run_create_faults clone-linked top.qcow2 top.raw img clone --linked -q top.qcow2 'c%d.qcow2' --count 3
NEW="f.qcow2" run_create_faults clone-full full.qcow2 full.raw img clone --full -q full.qcow2 f.qcow2
NEW="g.qcow2" run_create_faults clone-full-copy full.qcow2 full.raw img clone --full -q --no-offload full.qcow2 g.qcow2

# seal: the image keeps its content and opens (sealed or not) after any fault
run_faults seal full.qcow2 full.raw img seal full.qcow2

run_faults flatten clone.qcow2 clone.raw img flatten -q clone.qcow2
run_faults relink full.qcow2 top.raw img relink -q -b base.qcow2 -F qcow2 full.qcow2
run_faults consolidate-commit top.qcow2 top.raw img consolidate -q --no-scan --method commit top.qcow2
run_faults consolidate-pull top.qcow2 top.raw img consolidate -q --no-scan --method pull top.qcow2
run_faults consolidate-new top.qcow2 top.raw img consolidate -q --no-scan --method new-layer top.qcow2
note ok
