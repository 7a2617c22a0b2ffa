#!/bin/bash
# hosts (PostgreSQL only): three hosts (stores a, b, c with their own
# --host-id) share one catalog and one shared dir pool.
#  1. Host-local pools: t sits in host a's local secondary pool; b's
#     first clone of t (which would read a's pool to copy t) is refused
#     naming host a; after a's first clone made the copy in the shared
#     pool, parallel clones from all three hosts work: one template copy,
#     and deps agree whichever host asks.
#  2. A pool local to c: b cannot remove c's VM there (refused naming c),
#     c can; every journal row records its host.
#  3. fsck from b says which host owns what (owner findings, --json's
#     host) and finds the catalog and files agree.
#  4. Recovery at command start only looks at this host's running rows:
#     the query uses the journal_host_running index (auto_explain).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../catalog/cat-lib.sh"
. "$HERE/host-lib.sh"

# 1. local pools, one copy, parallel clones
rc=0
on b clone t --pool shared --name early -q 2> early.err || rc=$?
[ "$rc" = 1 ] || fail "b's first clone of a's local template exited $rc: $(cat early.err)"
grep -q "local to host 'a'" early.err || fail "refusal does not name host a: $(cat early.err)"
[ "$(hsql "SELECT count(*) FROM template_copies")" = 0 ] || fail "b made a copy"
no_files_of early
on a clone t --pool shared --name first -q || fail "a's first clone"
pids=()
for h in a b c; do
    on "$h" clone t --pool shared --name "$h-%d" --count 4 -q > "clone-$h.out" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "a parallel clone failed: $(cat clone-*.out)"
done
[ "$(hsql "SELECT count(*) FROM template_copies")" = 1 ] || fail "more than one template copy"
[ "$(hsql "SELECT count(*) FROM vms WHERE state = 'ready'")" = 13 ] || fail "13 VMs expected"
for h in a b c; do
    on "$h" deps t --json > "deps-$h.json" || fail "deps on $h"
done
cmp -s deps-a.json deps-b.json && cmp -s deps-a.json deps-c.json ||
    fail "deps differ between hosts: $(cat deps-a.json deps-b.json)"
[ "$(grep -o '"c-[0-9]"' deps-a.json | sort -u | wc -l)" = 4 ] || fail "deps misses c's VMs: $(cat deps-a.json)"

# 2. a pool local to c
mkdir -p "$T/loc-c"
on c pool add loc-c "$T/loc-c" --kind primary -q || fail "pool add loc-c"
rc=0
on c clone t --pool loc-c --name cvm -q 2> c.err || rc=$?    # a copy of t from a's pool
[ "$rc" = 1 ] && grep -q "local to host 'a'" c.err || fail "c copied a's local template: $rc $(cat c.err)"
on c clone first --full --pool loc-c --name cvm -q || fail "c's full clone into its local pool"
rc=0
on b rm cvm -q 2> rm.err || rc=$?
[ "$rc" = 1 ] || fail "b's rm of c's local VM exited $rc: $(cat rm.err)"
grep -q "local to host 'c'" rm.err || fail "refusal does not name host c: $(cat rm.err)"
[ "$(hsql "SELECT state FROM vms WHERE name = 'cvm'")" = ready ] || fail "cvm changed"
ls "$T/loc-c" | grep -q "^cvm-disk" || fail "cvm's file went"
on b rm a-1 -q || fail "b removes a's VM in the shared pool"
on c rm cvm -q || fail "c removes its own VM"
[ "$(hsql "SELECT count(*) FROM journal WHERE host_id IS NULL OR host_id NOT IN ('a', 'b', 'c')")" = 0 ] ||
    fail "journal rows without their host: $(hsql "SELECT id, op, host_id FROM journal")"
[ "$(hsql "SELECT host_id FROM journal WHERE op = 'rm' AND target = 'a-1'")" = b ] ||
    fail "rm of a-1 is not recorded as host b's"

# 3. fsck says who owns what
catalog_agrees
[ "$(jget "$T/fsck.json" 'd["host"]')" = b ] || fail "fsck --json host: $(cat "$T/fsck.json")"
jget "$T/fsck.json" '[f["detail"] for f in d["findings"] if f["action"] == "owner" and f["subject"] == "pool '"'sec-a'"'"][0]' |
    grep -q "local to host 'a'" || fail "fsck does not say sec-a is a's: $(cat "$T/fsck.json")"
on b fsck > fsck.txt || fail "fsck text"
grep -q "^owner .*pool 'loc-c': local to host 'c'" fsck.txt || fail "fsck text: $(cat fsck.txt)"

# 4. pending rows by index: 20,000 finished rows, then a command's start
hsql "INSERT INTO journal(op, target, state, pid, host_id, started)
      SELECT 'clone', 'x' || g, 'done', 1, 'h' || (g % 50), 0 FROM generate_series(1, 20000) g;
      ANALYZE journal" > /dev/null
PGOPTIONS='-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 -c auto_explain.log_level=log' \
    VMCLONE_HOME=$T/host-b "$VMCLONE" list -q > /dev/null 2>&1 || true
logf=$PG_DIR/log
grep -A6 "FROM journal WHERE state = 'running' AND (host_id" "$logf" > plan.txt ||
    note "no auto_explain output (server log $logf)"
if [ -s plan.txt ]; then
    grep -q "journal_host_running\|journal_running" plan.txt || fail "recovery scans the journal: $(cat plan.txt)"
    grep -q "Seq Scan on journal" plan.txt && fail "recovery scans the journal: $(cat plan.txt)"
    note "recovery's plan: $(grep -o 'Index[A-Za-z ]*Scan[a-z ]* using [a-z_]* on journal' plan.txt | head -1)"
fi
exit 0
