#!/bin/bash
# lifecycle: protection and garbage collection. Deleting a template or a
# snapshot with dependents is refused (with the list); retire + rm of the
# last dependent frees a template; gc removes expired VMs, unreferenced
# template copies and retired templates, reports unknown files without
# deleting them, and never deletes a file something depends on, and
# reports what it freed; flattening the last dependent frees a retired
# template; --flatten-dependents (rm and retire) detaches the clones first.
. "$(dirname "$0")/cat-lib.sh"

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
vmc rm a2 --json > rm.json || fail "rm a2"
[ "$(jget rm.json 'd["templates_freed"]')" = "['tA']" ] || fail "rm --json does not report tA freed: $(cat rm.json)"
[ "$(sql "SELECT count(*) FROM templates WHERE name='tA'")" = 0 ] || fail "retired template not freed with its last dependent"
[ -z "$(ls "$H"/secondary | grep tA)" ] || fail "files of tA left: $(ls "$H"/secondary)"
[ -z "$(ls "$H"/primary | grep copy-tA)" ] || fail "copy of tA left"

# a retired template is freed when its last dependent is flattened too
ok vmc template import tF t.qcow2 -q
ok vmc clone tF --name f1 -q
ok vmc template retire tF -q
[ "$(sql "SELECT count(*) FROM templates WHERE name='tF'")" = 1 ] || fail "tF freed too early"
ok vmc flatten f1 -q
[ "$(sql "SELECT count(*) FROM templates WHERE name='tF'")" = 0 ] ||
    fail "retired template not freed when its last dependent was flattened"
[ -z "$(ls "$H"/primary "$H"/secondary | grep -- '-tF-')" ] || fail "files of tF left"
ok vmc rm f1 -q

# retire --flatten-dependents: VMs and snapshots on it become standalone,
# then it goes at once
ok vmc template import tR t.qcow2 -q
ok vmc clone tR --name r1 -q
ok vmc clone tR --name r2 -q
ok vmc snapshot create r2 s -q
vmc template retire tR --flatten-dependents --json > rr.json || fail "retire --flatten-dependents"
[ "$(jget rr.json '(d["action"], d["freed"])')" = "('retired', True)" ] || fail "retire --flatten-dependents: $(cat rr.json)"
[ "$(jget rr.json '[x["kind"] + " " + x["name"] for x in d["flattened"]]')" = "['snapshot r2@s', 'vm r1']" ] || fail "flattened: $(cat rr.json)"
[ "$(sql "SELECT count(*) FROM templates WHERE name='tR'")" = 0 ] || fail "tR not freed"
for v in r1 r2; do
    p=$(vmc info $v --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
    qemu-img compare -q -U -f qcow2 -F qcow2 t.qcow2 "$p" || fail "$v content changed"
done
ok vmc rm r1 r2 -q

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
# a retired template whose last VM expires: gc reports it freed as well
ok vmc template import tG t.qcow2 -q
ok vmc clone tG --name g1 --ttl 1s -q
ok vmc template retire tG -q
sleep 2
vmc gc --dry-run --json > dry.json || fail "gc --dry-run"
[ "$(jget dry.json 'sum(1 for x in d["findings"] if x["action"]=="would-remove")')" = 4 ] || fail "dry run: $(cat dry.json)"
[ "$(jget dry.json 'd["removed_count"]')" = 0 ] && [ "$(jget dry.json 'len(d["removed"])')" = 4 ] || fail "dry run counts removals: $(cat dry.json)"
vmc info shortlived --json >/dev/null || fail "dry run removed something"
vmc gc --json > gc.json || fail gc
[ "$(jget gc.json 'sum(1 for x in d["findings"] if x["action"]=="removed")')" = 5 ] || fail "gc: $(cat gc.json)"
[ "$(jget gc.json 'd["removed_count"]')" = 5 ] && [ "$(jget gc.json 'len(d["removed"])')" = 5 ] || fail "gc count: $(cat gc.json)"
[ "$(jget gc.json '[x["detail"] for x in d["findings"] if x["subject"]=="tG"][0].startswith("retired template")')" = True ] ||
    fail "gc does not report the retired template it freed: $(cat gc.json)"
[ "$(sql "SELECT count(*) FROM templates WHERE name='tG'")" = 0 ] || fail "tG not freed"
[ "$(jget gc.json 'd["bytes_freed"] > 0')" = True ] || fail "gc freed no bytes: $(cat gc.json)"
[ "$(jget gc.json 'sum(1 for x in d["findings"] if x["action"]=="unknown")')" = 1 ] || fail "gc unknown: $(cat gc.json)"
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
