#!/bin/bash
# soak: 15 s of scripts/soak-catalog.sh (4 workers, mixed clone, rm,
# snapshot, template import/rm/retire, gc, flatten on one store): no raw
# SQL error, no crash, fsck clean and every image checks at the end
# (issue 9 finding 1). The long run is the script itself (90 s default).
. "$(dirname "$0")/cat-lib.sh"

TMPDIR=$T "$TESTS_DIR/../scripts/soak-catalog.sh" --vmclone "$VMCLONE" \
    --seconds "${SOAK_SECONDS:-15}" --workers 4 --home "$T/soak-home" > soak.out 2>&1 ||
    fail "soak-catalog failed: $(cat soak.out)"
cat soak.out
grep -q 'soak-catalog: PASS' soak.out || fail "no PASS line: $(cat soak.out)"
exit 0
