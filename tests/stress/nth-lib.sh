# tests/stress/nth-lib.sh - the sweep loop shared by nth-io.sh and
# nth-malloc.sh (sourced after tests/lib.sh).
#
#   sweep LABEL ARGS...   run "$TEST_HELPERS/nth-script DIR ARGS... N" for
#                         N = 1, 1+NTH_STEP, ... until a run whose fault did
#                         not fire; every run must exit 0 (right data) or 1
#                         with a message, never crash, never print a
#                         sanitizer report, never read wrong data; after an
#                         exit 0 a fault-free verify in a new process must
#                         pass, after an exit 1 it must not crash.
# Sets SWEEP_LAST (highest N run) and counts runs in SWEEP_ERRORS /
# SWEEP_OK. NTH_STEP (default 1) thins the sweep; NTH_MAX caps it.
# With SWALLOW_OK=0 a run whose fault fired must not exit 0 (an injected
# error was swallowed); the N that did are listed in SWEEP_SWALLOWED.

script=$TEST_HELPERS/nth-script
[ -x "$script" ] || fail "nth-script helper not built"
san='Sanitizer|runtime error:|stack-buffer|heap-buffer'

sweep() {
    local label=$1 n=1 rc d
    shift
    SWEEP_ERRORS=0 SWEEP_OK=0 SWEEP_LAST=0 SWEEP_SWALLOWED=
    while [ "$n" -le "${NTH_MAX:-100000}" ]; do
        d=$T/run-$label-$n
        mkdir -p "$d"
        rc=0
        "$script" "$d" "$@" "$n" > "$d/out" 2> "$d/err" || rc=$?
        [ "$rc" -lt 128 ] || fail "$label N=$n: killed by signal $((rc - 128)): $(tail -3 "$d/err")"
        grep -qE "$san" "$d/err" && fail "$label N=$n: sanitizer report: $(cat "$d/err")"
        grep -q 'WRONG DATA' "$d/err" && fail "$label N=$n: wrong data read back with no error: $(cat "$d/err")"
        grep -q '^calls=' "$d/out" || fail "$label N=$n: exit $rc without its summary: $(tail -3 "$d/err")"
        case $rc in
        0)  SWEEP_OK=$((SWEEP_OK + 1))
            rc=0
            "$script" "$d" verify 2> "$d/verify.err" || rc=$?
            [ "$rc" = 0 ] || fail "$label N=$n: succeeded, but a fresh read differs: $(cat "$d/verify.err")"
            if grep -q 'fired=0' "$d/out"; then
                SWEEP_LAST=$n
                rm -rf "$d"
                return 0
            fi
            SWEEP_SWALLOWED="$SWEEP_SWALLOWED $n"
            [ "${SWALLOW_OK:-1}" = 1 ] || fail "$label N=$n: the injected failure was swallowed (exit 0)" ;;
        1)  SWEEP_ERRORS=$((SWEEP_ERRORS + 1))
            [ -s "$d/err" ] || fail "$label N=$n: exit 1 without a message"
            rc=0
            "$script" "$d" verify > /dev/null 2> "$d/verify.err" || rc=$?
            [ "$rc" -lt 2 ] || fail "$label N=$n: verify after the failure exited $rc: $(tail -3 "$d/verify.err")"
            grep -qE "$san" "$d/verify.err" && fail "$label N=$n: sanitizer report on reopen: $(cat "$d/verify.err")" ;;
        *)  fail "$label N=$n: exit $rc: $(tail -3 "$d/err")" ;;
        esac
        SWEEP_LAST=$n
        rm -rf "$d"
        n=$((n + ${NTH_STEP:-1}))
    done
    fail "$label: still firing at N=$n (NTH_MAX)"
}
