#!/bin/bash
# nth-io: fail host I/O call N of a fixed script (create template, write,
# create linked clone, write, flush, close, reopen, read: see
# tests/helpers/nth-script.c) for every N until the script runs out of
# calls, once (transient) and persistently (N and every later call):
# 0 crashes, 0 sanitizer reports, every failure an error with a message,
# never exit 0 with wrong data, and never exit 0 at all once a fault was
# injected (reliability.md §6 test 8).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/stress/nth-lib.sh"

# every host I/O failure must reach the caller: none may be swallowed
SWALLOW_OK=0
for kind in once persistent; do
    sweep "io-$kind" io "$kind"
    note "io $kind: N = 1..$SWEEP_LAST (step ${NTH_STEP:-1}): $SWEEP_ERRORS runs failed with an error, $SWEEP_OK succeeded with the right data"
    [ "$SWEEP_ERRORS" -gt 0 ] || fail "io $kind: no injected fault surfaced as an error"
done
