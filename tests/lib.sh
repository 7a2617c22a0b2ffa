# tests/lib.sh - shared helpers for the shell tests (interop suite).
#
# Source it first thing:   . "$(dirname "$0")/../lib.sh"
#
# Environment (set by tests/meson.build):
#   VMCLONE      path of the vm-clone binary under test (required)
#   TEST_HELPERS directory holding the compiled test helpers (optional)
#   VMC_KEEP=1   keep the scratch directory of the test for inspection
#
# Every call of our binary goes through `vmc`, which turns a death by
# signal (exit >= 128) or a sanitizer report into a test failure, whatever
# the caller does with the exit code.

set -u

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)

# The distribution's python3 where there is one: a version manager's shim in
# PATH (pyenv) runs about 40 processes per call, and the tests call
# python3 hundreds of times.
if [ -x /usr/bin/python3 ]; then
    python3() { /usr/bin/python3 "$@"; }
fi

_cleanup_hooks=()
T=

# The test fails if fail() was called anywhere, even from a subshell.
_on_exit() {
    local rc=$?
    local h
    for h in "${_cleanup_hooks[@]+"${_cleanup_hooks[@]}"}"; do
        eval "$h" >/dev/null 2>&1 || true
    done
    if [ -n "$T" ] && [ -e "$T/.failed" ]; then
        rc=1
    fi
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ "${VMC_KEEP:-0}" = 1 ] || [ "$rc" != 0 -a "$rc" != 77 -a "${VMC_KEEP_ON_FAIL:-0}" = 1 ]; then
            echo "scratch kept in $T" >&2
        else
            rm -rf "$T"
        fi
    fi
    exit "$rc"
}
trap _on_exit EXIT

# cleanup_fn CMD...: run CMD when the test exits (in registration order).
cleanup_fn() {
    _cleanup_hooks+=("$*")
}

# hold_open IMAGE: hold IMAGE (qcow2) open read-write through libvmclone
# (tests/helpers/hold-open, $TEST_HOLD_OPEN) until hold_release; its pid
# in $HOLD_PID (also killed when the test ends).
hold_open() {
    local _
    [ -x "${TEST_HOLD_OPEN:-}" ] || fail "TEST_HOLD_OPEN: the hold-open helper is not built"
    rm -f "$T/hold.fifo"
    mkfifo "$T/hold.fifo"
    "$TEST_HOLD_OPEN" -w -f qcow2 "$1" < "$T/hold.fifo" > "$T/hold.out" 2> "$T/hold.err" &
    HOLD_PID=$!
    exec 3> "$T/hold.fifo"
    cleanup_fn "exec 3>&-; kill $HOLD_PID 2> /dev/null"
    for _ in $(seq 300); do grep -q ready "$T/hold.out" && return 0; sleep 0.1; done
    fail "hold-open did not open $1: $(cat "$T/hold.err")"
}
# hold_release: close the image hold_open holds; fails unless the holder
# closed it cleanly.
hold_release() {
    exec 3>&-
    wait "$HOLD_PID" || fail "hold-open failed to close the image cleanly: $(cat "$T/hold.err")"
}

skip() {
    echo "SKIP: $TEST_NAME: $*" >&2
    exit 77
}

fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    [ -n "$T" ] && : > "$T/.failed"
    exit 1
}

note() {
    echo "# $*"
}

# requires CMD [ARGS...]: skip the test (exit 77) unless CMD exists and,
# when ARGS are given, `CMD ARGS` succeeds.
requires() {
    command -v "$1" >/dev/null 2>&1 || skip "'$1' is not installed"
    if [ $# -gt 1 ]; then
        "$@" >/dev/null 2>&1 || skip "'$*' failed"
    fi
}

# Our own binary is not an optional tool: a missing one is a failure.
[ -n "${VMCLONE:-}" ] || { echo "FAIL: VMCLONE is not set" >&2; exit 1; }
[ -x "$VMCLONE" ] || { echo "FAIL: vm-clone binary '$VMCLONE' not built" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/vmc-$TEST_NAME.XXXXXX") || exit 1
cd "$T" || exit 1

# vmc ARGS...: run vm-clone; stdout passes through, stderr is shown and
# kept in $T/vmc.err.  Returns vm-clone's exit code.
vmc() {
    local rc=0
    "$VMCLONE" "$@" 2> "$T/vmc.err" || rc=$?
    cat "$T/vmc.err" >&2
    if [ "$rc" -ge 128 ]; then
        fail "vm-clone $* was killed by signal $((rc - 128))"
    fi
    if grep -qE 'Sanitizer|runtime error:|stack-buffer|heap-buffer' "$T/vmc.err"; then
        fail "sanitizer report from: vm-clone $*"
    fi
    return "$rc"
}

# ok CMD...: CMD must exit 0.
ok() {
    local rc=0
    "$@" || rc=$?
    [ "$rc" = 0 ] || fail "'$*' exited $rc, expected 0"
}

# expect_rc N CMD...: CMD must exit N.
expect_rc() {
    local want=$1 rc=0
    shift
    "$@" || rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want"
}

# expect_fail CMD...: CMD (a vmc call) must fail cleanly: exit code in
# 1..127, and at least one line on stderr.
expect_fail() {
    local rc=0
    "$@" > "$T/out" || rc=$?
    [ "$rc" != 0 ] || fail "'$*' succeeded, expected a failure"
    [ "$rc" -lt 128 ] || fail "'$*' died with signal $((rc - 128))"
    [ -s "$T/vmc.err" ] || fail "'$*' failed (exit $rc) without a message on stderr"
}

# last_err: the stderr of the last vmc call.
last_err() {
    cat "$T/vmc.err"
}

# err_matches REGEX: the last vmc stderr matches REGEX (grep -Ei).
err_matches() {
    grep -qEi "$1" "$T/vmc.err" || fail "stderr '$(head -c 300 "$T/vmc.err")' does not match /$1/"
}

# qemu_check FILE: `qemu-img check` must exit 0 (no leaks, no corruption).
qemu_check() {
    local rc=0 out
    out=$(qemu-img check -f qcow2 "$1" 2>&1) || rc=$?
    [ "$rc" = 0 ] || fail "qemu-img check $1 exited $rc: $out"
}

# raw_of IMG OUT [FMT]: guest view of IMG (through its chain) as a raw file.
raw_of() {
    local fmt=${3:-qcow2}
    qemu-img convert -f "$fmt" -O raw "$1" "$2" || fail "qemu-img convert -O raw $1 failed"
}

# qemu_same A B [FMT_A [FMT_B]]: qemu-img compare must say identical.
qemu_same() {
    local rc=0 out
    out=$(qemu-img compare -f "${3:-qcow2}" -F "${4:-raw}" "$1" "$2" 2>&1) || rc=$?
    [ "$rc" = 0 ] || fail "qemu-img compare $1 $2 exited $rc: $out"
}

# same_bytes A B: the two files are byte-identical.
same_bytes() {
    cmp -s "$1" "$2" || fail "$1 and $2 differ: $(cmp "$1" "$2" 2>&1 | head -1)"
}

# Map JSON filters: drop host offsets, merge adjacent extents with the
# same (depth, present, zero, data); prints one extent per line.
#   map_filter < qemu-img-map.json
map_filter() {
    python3 "$TESTS_DIR/helpers/map-filter.py" "$@"
}

# qemu_map IMG: filtered `qemu-img map --output=json`.
qemu_map() {
    qemu-img map -f qcow2 --output=json "$1" | map_filter
}

# vmc_map IMG: filtered `vm-clone img map --output=json`.
vmc_map() {
    local out
    out=$(vmc img map -f qcow2 --output=json "$1") || fail "vm-clone img map $1 failed"
    printf '%s\n' "$out" | map_filter || fail "vm-clone img map $1: output is not qemu-img-like JSON"
}

# qcow2_patch IMG FIELD=VALUE...: rewrite qcow2 header fields in place.
qcow2_patch() {
    python3 "$TESTS_DIR/helpers/qcow2-patch.py" "$@" || fail "qcow2-patch $* failed"
}

# mkpattern FILE SIZE: a sparse raw file with some random extents.
mkpattern() {
    local f=$1 size=$2
    truncate -s "$size" "$f"
    python3 - "$f" "$size" <<'PY'
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
rnd = random.Random(size)
with open(path, "r+b") as f:
    step = max(size // 8, 4096)
    for start in range(0, size, step):
        ln = min(rnd.randrange(512, max(step // 2, 1024)), size - start)
        f.seek(start + rnd.randrange(0, 8) * 512)
        f.write(os.urandom(ln)[: max(0, size - f.tell())])
PY
}

sha() {
    sha256sum "$1" | cut -d' ' -f1
}
