#!/bin/bash
# nth-malloc: after a clean run of the fixed script (tests/helpers/
# nth-script.c), fail allocation N of the final open + read (malloc,
# calloc, realloc, strdup, strndup, asprintf, wrapped at link time) for
# every N until open + read run out of allocations: 0 crashes, 0
# sanitizer reports (leaks included under ASan), every failure an error
# with a message, never exit 0 with wrong data (reliability.md §6 test 8).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/stress/nth-lib.sh"

sweep malloc malloc
note "malloc: N = 1..$SWEEP_LAST (step ${NTH_STEP:-1}): $SWEEP_ERRORS runs failed with an error, $SWEEP_OK succeeded with the right data (allocation failures absorbed at N =$SWEEP_SWALLOWED)"
[ "$SWEEP_ERRORS" -gt 0 ] || fail "malloc: no failed allocation surfaced as an error"
