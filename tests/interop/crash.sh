#!/bin/bash
# crash: a crash at any point of a write + flush leaves an image that
# qemu-img check finds clean or with leaked clusters only (exit 0 or 3,
# never 2), whose earlier flushed data is intact, and whose written range
# reads either the old or the new bytes. The crash is a process death
# injected by the host I/O layer (VMCLONE_FAULT=OP:N:crash) at the Nth
# pwrite or fdatasync; ENOSPC injected the same way must fail cleanly.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x11 0 16M' base.qcow2 >/dev/null

# old_or_new FILE OFF LEN OLD NEW: every byte of the range is OLD or NEW.
old_or_new() {
    qemu-img convert -f qcow2 -O raw "$1" "$T/view.raw" || fail "cannot read $1"
    python3 - "$T/view.raw" "$2" "$3" "$4" "$5" <<'PY' || fail "$1: range holds bytes that are neither old nor new"
import sys
path, off, ln, old, new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0), int(sys.argv[5], 0)
data = open(path, "rb").read()[off:off + ln]
bad = [i for i, b in enumerate(data) if b not in (old, new)]
sys.exit(1 if bad else 0)
PY
}

run_case() {   # cluster-size extra-create-opts fault
    local cs=$1 opts=$2 fault=$3 rc=0 ck=0
    rm -f c.qcow2
    ok vmc img create -q -f qcow2 -o cluster_size=$cs$opts -b base.qcow2 -F qcow2 c.qcow2
    ok vmc img io -f qcow2 c.qcow2 -c 'write -P 0x33 0 100k' -c flush
    VMCLONE_FAULT="$fault" "$VMCLONE" img io -f qcow2 c.qcow2 \
        -c 'write -P 0x44 12345 3M' -c 'write -z 5M 256k' -c 'discard 6M 1M' -c flush \
        >/dev/null 2>"$T/fault.err" || rc=$?
    case "$fault" in
    *crash) [ "$rc" = 0 ] || [ "$rc" = 99 ] || fail "$fault: exit $rc, expected 0 or 99" ;;
    *) [ "$rc" -lt 128 ] || fail "$fault: died with signal $((rc - 128))" ;;
    esac
    qemu-img check -q -f qcow2 c.qcow2 >/dev/null 2>&1 || ck=$?
    [ "$ck" = 0 ] || [ "$ck" = 3 ] || fail "$fault (cluster $cs$opts): qemu-img check exit $ck after the fault"
    qemu-io -f qcow2 -r -c 'read -P 0x33 0 12345' -c 'read -P 0x11 3158073 2084807' c.qcow2 \
        | grep -q "Pattern verification failed" && fail "$fault: flushed data lost"
    old_or_new c.qcow2 12345 $((102400 - 12345)) 0x33 0x44
    old_or_new c.qcow2 102400 $((12345 + 3145728 - 102400)) 0x11 0x44
    if [ "$ck" = 3 ]; then
        # leaks are repairable and nothing else is wrong
        ok vmc img check -r leaks c.qcow2 >/dev/null
        qemu_check c.qcow2
    fi
}

# CRASH_STEPS=short (the sanitizer run of .ci/run): every other point
if [ "${CRASH_STEPS:-}" = short ]; then
    syncs="1 2 4 8" pwrites="3 200 3000 7000"
else
    syncs="1 2 3 4 5 6 7 8" pwrites="3 40 200 1000 3000 6500 7000"
fi
for cs in 512 65536; do
    for n in $syncs; do
        run_case $cs "" "sync:$n:crash"
    done
    for n in $pwrites; do
        run_case $cs "" "pwrite:$n:crash"
        run_case $cs "" "pwrite:$n+:ENOSPC"
    done
done
for n in 1 2 3 4 5; do
    run_case 131072 ",extended_l2=on" "sync:$n:crash"
done
note "ok"
