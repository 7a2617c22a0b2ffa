#!/bin/bash
# scale: the queries a large catalog needs (docs/design/scale-out.md) on a
# small one. `tree TEMPLATE` is that template's subtree only (its copy,
# the VMs on it, a snapshot and the clone made from it) and nothing of
# another template; `deps` walks the same levels; the schema has the
# indexes of migration 8, and the statements find volumes by index, not
# by reading the whole table (SQLite: EXPLAIN QUERY PLAN; PostgreSQL:
# EXPLAIN with seq scans off). bench/bench-catalog-scale.sh measures the
# same commands on 10,000 templates x 1,000,000 VMs.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import tA t.qcow2 -q
ok vmc template import tB t.qcow2 -q
ok vmc clone tA --name a1 -q
ok vmc clone tA --name a2 -q
ok vmc snapshot create a1 s -q
ok vmc clone a1 --snapshot s --name w -q
ok vmc clone tB --name b1 -q

# tree TEMPLATE: the subtree of tA, nothing of tB
vmc tree tA --json > ta.json || fail "tree tA"
names() {   # every kind/name of a tree, sorted
    python3 -c 'import json,sys
def walk(n):
    for x in n:
        print(x["kind"], x["name"]); walk(x["children"])
walk(json.load(open(sys.argv[1])))' "$1" | sort | tr '\n' ','
}
want="copy tA@primary,snapshot a1@s,template tA,vm a1,vm a2,vm w,"
[ "$(names ta.json)" = "$want" ] || fail "tree tA: $(names ta.json), expected $want"
[ "$(jget ta.json 'd[0]["name"]')" = tA ] || fail "tree tA: root $(jget ta.json 'd[0]["name"]')"
vmc tree tB --json > tb.json || fail "tree tB"
[ "$(names tb.json)" = "copy tB@primary,template tB,vm b1," ] || fail "tree tB: $(names tb.json)"
# the whole forest has both, as before
vmc tree --json > all.json || fail "tree"
[ "$(names all.json)" = "copy tA@primary,copy tB@primary,snapshot a1@s,template tA,template tB,vm a1,vm a2,vm b1,vm w," ] ||
    fail "tree: $(names all.json)"
# ... the same subtree, node for node, as in the whole forest
[ "$(jget all.json 'json.dumps([x for x in d if x["name"] == "tA"], sort_keys=True)')" = \
  "$(jget ta.json 'json.dumps(d, sort_keys=True)')" ] || fail "tree tA differs from tA in tree"
ok vmc tree tA > ta.txt
grep -q "vm w" ta.txt || fail "tree tA (text): $(cat ta.txt)"
expect_rc 3 vmc tree nosuch
err_matches "no template named 'nosuch'"
expect_fail vmc tree tA tB

# deps: every level (w sits on a1's snapshot)
vmc deps tA --json > da.json || fail "deps tA"
[ "$(jget da.json '",".join(x["kind"] + " " + x["name"] for x in d)')" = "snapshot a1@s,vm a1,vm a2,vm w" ] ||
    fail "deps tA: $(cat da.json)"
vmc deps a1 --json > d1.json || fail "deps a1"
[ "$(jget d1.json '",".join(x["kind"] + " " + x["name"] for x in d)')" = "vm w" ] ||
    fail "deps a1: $(cat d1.json)"
expect_fail vmc template rm tA
err_matches "4 dependents"
expect_fail vmc rm a1
err_matches "vm 'w'"

# migration 8: the indexes are there
for i in vms_template vms_journal snapshots_journal templates_journal template_copies_journal; do
    if [ -n "${VMC_TEST_PG:-}" ]; then
        n=$(sql "SELECT count(*) FROM pg_indexes WHERE indexname = '$i'")
    else
        n=$(sql "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '$i'")
    fi
    [ "$n" = 1 ] || fail "no index $i"
done
[ "$(sql 'PRAGMA user_version')" -ge 8 ] || fail "schema version $(sql 'PRAGMA user_version')"

# the statements of deps, tree and info find volumes by index
plans=(
    "SELECT kind, name, path FROM volume_owners WHERE id IN (1, 2, 3)"
    "SELECT id FROM volumes WHERE parent_id IN (1, 2, 3)"
    "SELECT v.id, v.disk, o.path, v.virtual_size FROM volumes v JOIN volume_owners o ON o.id = v.id JOIN vms m ON m.id = v.vm_id WHERE m.name = 'a1' AND v.top = 1"
    "SELECT id FROM volumes WHERE template_id = 1 UNION ALL SELECT v.id FROM volumes v JOIN template_copies c ON c.id = v.copy_id WHERE c.template_id = 1"
)
for q in "${plans[@]}"; do
    if [ -n "${VMC_TEST_PG:-}" ]; then
        conn=$(sed -n 's/^catalog=//p' "$H/catalog.conf")
        plan=$(psql "$conn" -AtqX -c "SET enable_seqscan = off" -c "EXPLAIN $q") ||
            fail "EXPLAIN $q"
        ! grep -q "Seq Scan on volumes" <<< "$plan" || fail "a scan of volumes: $q: $plan"
    else
        plan=$(sql "EXPLAIN QUERY PLAN $q") || fail "EXPLAIN QUERY PLAN $q"
        ! grep -qE "SCAN (v|volumes|o)( |$)" <<< "$plan" || fail "a scan of volumes: $q: $plan"
    fi
done

ok vmc rm w a2 b1 -q
ok vmc snapshot rm a1 s -q
ok vmc rm a1 -q
ok vmc template rm tA -q
vmc tree tB --json > tb2.json || fail "tree tB after rm"
[ "$(names tb2.json)" = "copy tB@primary,template tB," ] || fail "tree tB: $(names tb2.json)"
fsck_clean
