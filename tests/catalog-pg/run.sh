#!/bin/bash
# tests/catalog-pg/run.sh TEST.sh - run one catalog test (tests/catalog)
# against PostgreSQL: start a throwaway server (tests/helpers/pg.sh), hand
# its connection string to cat-lib.sh in VMC_TEST_PG (each test's store
# then gets its own database), stop the server whatever the test did.
set -u
TEST_NAME=pg-$(basename "$1" .sh)
. "$(dirname "$0")/../helpers/pg.sh"
pg_start
echo "# PostgreSQL ready in ${PG_START_MS} ms ($PG_DIR)"
# The randomized loops (crash.sh's kill -9 rounds, concurrent.sh's
# parallel clones) run shorter here: they test the catalog's protocol,
# which the SQLite run covers at full length; these rounds check that
# PostgreSQL keeps it. CAT_KILL_ITER/CAT_CONCURRENCY set outside win.
export CAT_KILL_ITER=${CAT_KILL_ITER:-20} CAT_CONCURRENCY=${CAT_CONCURRENCY:-20}
VMC_TEST_PG=$PG_CONNINFO bash "$1"
rc=$?
exit $rc
