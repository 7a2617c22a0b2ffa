#!/bin/bash
# lifecycle: protection and garbage collection. Deleting a template or a
# snapshot with dependents is refused (with the list); retire + rm of the
# last dependent frees a template; gc removes expired VMs, unreferenced
# template copies and retired templates, reports unknown files without
# deleting them, and never deletes a file something depends on;
# --flatten-dependents detaches the clones first.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/catalog/cat-lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version
requires sqlite3 --version

mk_template t.qcow2
ok vmc template import tA t.qcow2 -q
ok vmc template import tB t.qcow2 -q
ok vmc clone tA --name a1 -q
ok vmc clone tA --name a2 -q

# refused with the list of dependents
expect_fail vmc template rm tA
err_matches "2 dependents: vm 'a1', vm 'a2'"

# retire: hidden from new clones, kept while used, freed with the last
vmc template retire tA --json > r.json || fail retire
[ "$(jget r.json 'd["freed"]')" = False ] || fail "retire freed a used template"
expect_fail vmc clone tA --name a3
err_matches "retired"
ok vmc rm a1 -q
[ "$(sql "SELECT count(*) FROM templates WHERE name='tA'")" = 1 ] || fail "freed too early"
ok vmc rm a2 -q
[ "$(sql "SELECT count(*) FROM templates WHERE name='tA'")" = 0 ] || fail "retired template not freed with its last dependent"
[ -z "$(ls "$H"/secondary | grep tA)" ] || fail "files of tA left: $(ls "$H"/secondary)"
[ -z "$(ls "$H"/primary | grep copy-tA)" ] || fail "copy of tA left"

# snapshot with dependents
ok vmc clone tB --name v -q
ok vmc snapshot create v s1 -q
ok vmc clone v --snapshot s1 --name w -q
expect_fail vmc snapshot rm v s1
err_matches "vm 'w'"
expect_fail vmc rm v
err_matches "vm 'w'"

# gc: expired VMs, unreferenced copies, unknown files reported
ok vmc clone tB --name shortlived --ttl 1s -q
ok vmc clone tB --name ephemeral-%d --count 2 --ttl 1s -q
echo junk > "$H/primary/stray.qcow2"
sleep 2
vmc gc --dry-run --json > dry.json || fail "gc --dry-run"
[ "$(jget dry.json 'sum(1 for x in d if x["action"]=="would-remove")')" = 3 ] || fail "dry run: $(cat dry.json)"
vmc info shortlived --json >/dev/null || fail "dry run removed something"
vmc gc --json > gc.json || fail gc
[ "$(jget gc.json 'sum(1 for x in d if x["action"]=="removed")')" = 3 ] || fail "gc: $(cat gc.json)"
[ "$(jget gc.json 'sum(1 for x in d if x["action"]=="unknown")')" = 1 ] || fail "gc unknown: $(cat gc.json)"
[ -f "$H/primary/stray.qcow2" ] || fail "gc deleted an unknown file"
expect_fail vmc info shortlived

# gc never deletes what something depends on: the copy of tB is used by v and w
vmc gc --json > gc2.json || fail gc
[ "$(sql "SELECT count(*) FROM template_copies")" = 1 ] || fail "gc removed a used copy"
for f in $(sql "SELECT p.path||'/'||v.file FROM volumes v JOIN pools p ON p.id=v.pool_id"); do
    [ -f "$f" ] || fail "gc deleted $f which the catalog still lists"
done

# an unused copy goes: a template whose only VM was full-cloned then removed
ok vmc template import tC t.qcow2 -q
ok vmc clone tC --name c1 -q
ok vmc rm c1 -q
[ "$(sql "SELECT count(*) FROM template_copies c JOIN templates t ON t.id=c.template_id WHERE t.name='tC'")" = 1 ] ||
    fail "copy of tC missing"
vmc gc -q || fail gc
[ "$(sql "SELECT count(*) FROM template_copies c JOIN templates t ON t.id=c.template_id WHERE t.name='tC'")" = 0 ] ||
    fail "gc kept an unreferenced copy"

# --flatten-dependents: the clones become standalone, then the template goes
ok vmc rm w -q
ok vmc snapshot rm v s1 -q
ok vmc template rm tB --flatten-dependents -q
[ "$(sql "SELECT count(*) FROM templates WHERE name='tB'")" = 0 ] || fail "tB not removed"
vp=$(vmc info v --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
qemu-img info "$vp" | grep -q "backing file" && fail "v still has a backing file"
qemu-img compare -q -f qcow2 -F qcow2 t.qcow2 "$vp" || fail "flatten-dependents changed v"
rm -f "$H/primary/stray.qcow2"
check_all_disks
fsck_clean
