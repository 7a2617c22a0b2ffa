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
VMC_TEST_PG=$PG_CONNINFO bash "$1"
rc=$?
exit $rc
