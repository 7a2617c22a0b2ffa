#!/bin/bash
# request-id: --request-id under concurrency and with odd ids. Parallel
# retries of one call (while the first still runs) all return the same
# VM; ids are matched exactly ('Y%' is not 'Y', 'Z/1' is not the first
# VM of 'Z' --count 2); a version-1 catalog ("ID" / "ID/N" in request_id)
# is migrated and its requests still found.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import T t.qcow2 -q

# 8 parallel identical calls on a fresh pool (the first one copies the
# template, the others arrive meanwhile)
N=8
pids=()
for i in $(seq 1 $N); do
    "$VMCLONE" clone T --name r1 --request-id X --json > "o-$i.json" 2> "e-$i" &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { failed=$((failed + 1)); echo "call $((i + 1)): $(cat "e-$((i + 1))")" >&2; }
done
[ "$failed" = 0 ] || fail "$failed of $N retried calls failed"
made=0
for i in $(seq 1 $N); do
    [ "$(jget "o-$i.json" 'd["vms"]')" = "['r1']" ] || fail "call $i returned $(cat "o-$i.json")"
    [ "$(jget "o-$i.json" 'd["existing"]')" = False ] && made=$((made + 1))
done
[ "$made" = 1 ] || fail "$made calls say they made the VM"
[ "$(sql "SELECT count(*) FROM vms")" = 1 ] || fail "VMs: $(sql 'SELECT name FROM vms')"

# the same with --count: 4 parallel calls, one group of 3
pids=()
for i in 1 2 3 4; do
    "$VMCLONE" clone T --name 'g-%d' --count 3 --request-id G --json > "g-$i.json" 2> "ge-$i" &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "count call $((i + 1)): $(cat "ge-$((i + 1))")"
done
for i in 1 2 3 4; do
    [ "$(jget "g-$i.json" 'd["vms"]')" = "['g-1', 'g-2', 'g-3']" ] || fail "count call $i: $(cat "g-$i.json")"
done
[ "$(sql "SELECT count(*) FROM vms WHERE name LIKE 'g-%'")" = 3 ] || fail "count group made twice"

# exact matching: LIKE wildcards and '/' in ids
ok vmc clone T --name y1 --request-id Y -q
vmc clone T --name y2 --request-id 'Y%' --json > y2.json || fail "request Y%"
[ "$(jget y2.json 'd["existing"]')" = False ] || fail "'Y%' matched 'Y'"
vmc clone T --name y3 --request-id 'Y_' --json > y3.json || fail "request Y_"
[ "$(jget y3.json 'd["vms"][0]')" = y3 ] || fail "'Y_' matched another id"
ok vmc clone T --name 'z-%d' --count 2 --request-id Z -q
vmc clone T --name z9 --request-id 'Z/1' --json > z.json || fail "request Z/1"
[ "$(jget z.json 'd["vms"][0]')" = z9 ] || fail "'Z/1' matched the group of 'Z'"
vmc clone T --name y2 --request-id 'Y%' --json > ya.json || fail "retry Y%"
[ "$(jget ya.json 'd["vms"][0]')" = y2 ] && [ "$(jget ya.json 'd["existing"]')" = True ] ||
    fail "retry of 'Y%': $(cat ya.json)"
expect_fail vmc clone T --name 'z-%d' --count 3 --request-id Z
err_matches "different number"

[ -n "${VMC_TEST_PG:-}" ] && { fsck_clean; exit 0; }  # no version-1 catalog on PostgreSQL
# a version-1 catalog: ids in request_id only ("Z/1" alone could not
# exist next to the group of "Z" there)
ok vmc rm z9 -q
latest=$(sql 'PRAGMA user_version')
# the columns of the later migrations go too (3: hypervisors)
sql "ALTER TABLE templates DROP COLUMN firmware;
     ALTER TABLE vms DROP COLUMN domain_uri;
     ALTER TABLE vms DROP COLUMN domain_uuid;" || fail "drop version 3"
sql "DROP INDEX vms_request;
     UPDATE vms SET request_id = request_key || CASE WHEN request_idx > 0
         THEN '/' || request_idx ELSE '' END;
     ALTER TABLE vms DROP COLUMN request_idx;
     ALTER TABLE vms DROP COLUMN request_key;
     ALTER TABLE pools DROP COLUMN type;
     ALTER TABLE pools DROP COLUMN rbd_pool;
     ALTER TABLE pools DROP COLUMN rbd_namespace;
     ALTER TABLE pools DROP COLUMN rbd_conf;
     ALTER TABLE pools DROP COLUMN rbd_id;
     DROP INDEX journal_host_running; DROP INDEX labels_kv;
     DROP INDEX vms_template; DROP INDEX vms_journal;
     DROP INDEX snapshots_journal; DROP INDEX templates_journal;
     DROP INDEX template_copies_journal;
     ALTER TABLE journal DROP COLUMN host_id;
     ALTER TABLE pools DROP COLUMN host_id;
     DROP TABLE instant_templates;
     ALTER TABLE vms DROP COLUMN instant;
     DROP TABLE seeds;
     ALTER TABLE vms DROP COLUMN ephemeral;
     ALTER TABLE volumes DROP COLUMN kind;
     ALTER TABLE pools DROP COLUMN max_clones_per_base;
     PRAGMA user_version = 1;" || fail "downgrade to version 1"
vmc clone T --name 'z-%d' --request-id Z --count 2 --json > m.json || fail "after migration"
[ "$(jget m.json 'd["vms"]')" = "['z-1', 'z-2']" ] || fail "migrated group: $(cat m.json)"
vmc clone T --name y2 --request-id 'Y%' --json > m1.json || fail "after migration (Y%)"
[ "$(jget m1.json 'd["vms"]')" = "['y2']" ] || fail "migrated 'Y%': $(cat m1.json)"
[ "$(sql 'PRAGMA user_version')" = "$latest" ] || fail "not migrated"
check_all_disks
fsck_clean
