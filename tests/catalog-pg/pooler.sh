#!/bin/bash
# pooler (PostgreSQL only): vm-clone through PgBouncer in session mode,
# the pooler a site puts before PostgreSQL when many short commands
# connect (docs/design/scale-out.md; bench/bench-catalog-scale.sh times
# it). A store is made with the pooler's connection string; then
#  - 20 parallel linked clones: 20 VMs, one template copy, fsck clean;
#  - a clone killed (kill -9) while paused before its commit: the
#    pooler gives its server connection back only after DISCARD ALL, so
#    the dead command's advisory locks (the journal row's and the shared
#    maintenance lock) are gone: the next command's recovery rolls the
#    row back, and fsck, which takes the maintenance lock exclusively,
#    does not wait for ever.
# With the pooler's reset query emptied (PGB_RESET_QUERY=" "), the dead
# command's locks stay on the pooled connection and this test fails.
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=pooler
. "$HERE/../lib.sh"
[ -n "${VMC_TEST_PG:-}" ] || skip "needs PostgreSQL (run through tests/catalog-pg/run.sh)"
requires qemu-img --version
pgdir=$PG_DIR
. "$HERE/../helpers/pg.sh"
PG_DIR=$pgdir
. "$HERE/../helpers/pgbouncer.sh"

db=pooled_$$
psql "$VMC_TEST_PG dbname=postgres" -Atqc "CREATE DATABASE $db" > /dev/null ||
    fail "CREATE DATABASE"
pgb_start "$db"
cleanup_fn pgb_stop
sql() { psql "$VMC_TEST_PG dbname=$db" -AtqX -v ON_ERROR_STOP=1 -c "$1"; }

export VMCLONE_HOME=$T/store
vmc init -q --catalog "$PGB_CONNINFO" --host-id p || fail "init through the pooler"
qemu-img create -q -f qcow2 t.qcow2 16M
vmc template import t t.qcow2 -q || fail "import"

# 1. parallel clones
pids=()
for i in $(seq 1 20); do
    "$VMCLONE" clone t --linked --name "ci-$i" -q 2> "clone-$i.err" &
    pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
[ "$bad" = 0 ] || fail "$bad clones failed: $(cat clone-*.err | head -5)"
[ "$(vmc list | grep -c '^ci-')" = 20 ] || fail "list: $(vmc list)"
[ "$(sql "SELECT count(*) FROM template_copies")" = 1 ] ||
    fail "template copies: $(sql "SELECT * FROM template_copies")"
vmc fsck -q || fail "fsck after the clones: $(last_err)"

# 2. a dead command's locks die with it, through the pooler
rm -rf pause; mkdir pause
VMCLONE_PAUSE_AT=clone.before-commit VMCLONE_PAUSE_DIR=$T/pause \
    "$VMCLONE" clone t --name k-1 -q 2> kill.err &
pid=$!
for i in $(seq 1 2000); do
    [ -e pause/paused ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
[ -e pause/paused ] || fail "clone.before-commit not reached: $(cat kill.err)"
[ "$(sql "SELECT count(*) FROM journal WHERE state = 'running'")" = 1 ] ||
    fail "no running journal row while the clone is paused"
kill -9 "$pid"
wait "$pid" 2>/dev/null
timeout 60 "$VMCLONE" list -q > list.out 2> list.err ||
    fail "the next command after the kill (exit $?): $(cat list.err)"
[ "$(sql "SELECT count(*) FROM journal WHERE state = 'running'")" = 0 ] ||
    fail "the dead clone's row is still running: its lock outlived it ($(sql "SELECT op, target, state FROM journal WHERE state = 'running'"))"
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'k-1'")" = 0 ] ||
    fail "the dead clone was not rolled back"
timeout 60 "$VMCLONE" fsck -q 2> fsck.err ||
    fail "fsck after the kill (exit $?; 124: it waited for the dead command's maintenance lock): $(cat fsck.err)"
note "ok: 20 parallel clones and a kill -9 through PgBouncer (session mode)"
