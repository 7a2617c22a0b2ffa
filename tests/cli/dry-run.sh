#!/bin/bash
# --dry-run on the destructive commands other than rm (issue 13, point 3):
# template rm/retire (naming the VMs --flatten-dependents would make
# full), gc, flatten, consolidate, snapshot revert. Each prints what would be done and
# changes nothing: the catalog's rows and every file in the pools are
# byte-identical before and after; where the real command would refuse,
# the dry run prints the refusal and exits with the same status.
. "$(dirname "$0")/../catalog/cat-lib.sh"

# state: every catalog row and every pool file's bytes
state() {
    sqlite3 -batch "$H/catalog.db" .dump
    find "$H/primary" "$H/secondary" -type f -print0 | sort -z | xargs -0 sha256sum
}
# unchanged CMD...: CMD succeeds or fails, but changes nothing
unchanged() {
    state > "$T/before"
    "$@"
    state > "$T/after"
    cmp -s "$T/before" "$T/after" ||
        fail "'$*' changed the store: $(diff "$T/before" "$T/after" | head -20)"
}

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
ok vmc clone T --name web-1 -q
ok vmc clone T --name web-2 -q
tfile=$(sql "SELECT o.path FROM volumes v JOIN volume_owners o ON o.id = v.id
             JOIN templates t ON t.id = v.template_id WHERE t.name = 'T'")

# ---- template rm: the refusal (4), with the dependents named
unchanged expect_rc 4 vmc template rm T --dry-run
err_matches "would refuse.*web-1.*web-2"
# with --flatten-dependents: each VM made full named, the files listed
unchanged ok vmc template rm T --flatten-dependents --dry-run > trm.out
grep -qx "Would flatten vm web-1" trm.out && grep -qx "Would flatten vm web-2" trm.out ||
    fail "template rm --dry-run did not name the VMs: $(cat trm.out)"
grep -q "^Would remove template 'T'" trm.out && grep -qxF "  $tfile" trm.out ||
    fail "template rm --dry-run files: $(cat trm.out)"
unchanged ok vmc template rm T --flatten-dependents --dry-run --json > trm.json
[ "$(jget trm.json '[x["kind"] + " " + x["name"] for x in d["would_flatten"]]')" = "['vm web-1', 'vm web-2']" ] ||
    fail "template rm --dry-run --json: $(cat trm.json)"
[ "$(jget trm.json 'd["would_free"] and "'"$tfile"'" in d["would_remove_files"]')" = True ] ||
    fail "template rm --dry-run --json files: $(cat trm.json)"
unchanged expect_rc 3 vmc template rm nothere --dry-run

# ---- template retire: kept while used, or freed with the dependents flattened
unchanged ok vmc template retire T --dry-run > tret.out
grep -q "^Would retire template 'T'; it would be removed when" tret.out ||
    fail "retire --dry-run: $(cat tret.out)"
grep -q "^Would remove" tret.out && fail "retire --dry-run would remove a used template"
unchanged ok vmc template retire T --flatten-dependents --dry-run --json > tret.json
[ "$(jget tret.json '(d["would_retire"], d["would_free"], len(d["would_flatten"]))')" = "(True, True, 2)" ] ||
    fail "retire --flatten-dependents --dry-run --json: $(cat tret.json)"
unchanged expect_rc 3 vmc template retire nothere --dry-run

# ---- flatten: the disks that would be rewritten, with what they copy in
w1=$(sql "SELECT o.path FROM volumes v JOIN volume_owners o ON o.id = v.id
          JOIN vms m ON m.id = v.vm_id WHERE m.name = 'web-1' AND v.top = 1")
unchanged ok vmc flatten web-1 --dry-run > fl.out
[ "$(head -1 fl.out)" = "Would flatten VM 'web-1' (type becomes full): 1 disk rewritten" ] ||
    fail "flatten --dry-run: $(cat fl.out)"
grep -qF "  $w1 (copies in the data of " fl.out || fail "flatten --dry-run disk: $(cat fl.out)"
unchanged ok vmc flatten web-1 --dry-run --json > fl.json
[ "$(jget fl.json '(d["type_after"], d["would_rewrite"][0]["file"])')" = "('full', '$w1')" ] ||
    fail "flatten --dry-run --json: $(cat fl.json)"
unchanged expect_rc 3 vmc flatten nothere --dry-run

# ---- consolidate: the layers that would be merged into each disk
ok vmc snapshot create web-2 s1 -q
ok vmc snapshot create web-2 s2 -q
unchanged ok vmc consolidate web-2 --dry-run > co.out
grep -q "^Would rewrite '.*', merging 2 layers:" co.out || fail "consolidate --dry-run: $(cat co.out)"
unchanged ok vmc consolidate web-2 --dry-run --json > co.json
[ "$(jget co.json 'len(d["would_rewrite"][0]["would_merge"])')" = 2 ] ||
    fail "consolidate --dry-run --json: $(cat co.json)"
unchanged ok vmc consolidate web-1 --dry-run > co1.out
grep -q "no layers to merge" co1.out || fail "consolidate --dry-run, no snapshots: $(cat co1.out)"
unchanged expect_rc 3 vmc consolidate nothere --dry-run
# the plan matches what consolidate does
ok vmc consolidate web-2 --json > co-real.json
[ "$(jget co-real.json 'd["layers_merged"]')" = 2 ] || fail "consolidate merged: $(cat co-real.json)"

# ---- snapshot revert: the disks it would discard and the overlays it
# would make on the snapshot's layers; the refusals (3) as the real one
ok vmc clone T --name web-3 -q
ok vmc snapshot create web-3 s1 -q
top=$(sql "SELECT o.path FROM volumes v JOIN volume_owners o ON o.id = v.id
           JOIN vms m ON m.id = v.vm_id WHERE m.name = 'web-3' AND v.top = 1")
layer=$(sql "SELECT o.path FROM volumes v JOIN volume_owners o ON o.id = v.id
             JOIN snapshots s ON s.id = v.snapshot_id JOIN vms m ON m.id = s.vm_id
             WHERE m.name = 'web-3' AND s.name = 's1'")
unchanged ok vmc snapshot revert web-3@s1 --dry-run > rv.out
grep -qx "Would revert VM 'web-3' to snapshot 's1'" rv.out && grep -qxF "  discard $top" rv.out &&
    grep -qxF "  new disk 0: an overlay of $layer" rv.out || fail "snapshot revert --dry-run: $(cat rv.out)"
unchanged ok vmc snapshot revert web-3 s1 --dry-run --json > rv.json
[ "$(jget rv.json '(d["would_discard"], d["would_create"])')" = "(['$top'], [{'disk': 0, 'backing': '$layer'}])" ] ||
    fail "snapshot revert --dry-run --json: $(cat rv.json)"
unchanged expect_rc 3 vmc snapshot revert web-3@nosuch --dry-run
unchanged expect_rc 3 vmc snapshot revert nothere@s1 --dry-run
# the plan matches what revert does: the old disk goes, the new one is
# an overlay of the snapshot's layer
ok vmc snapshot revert web-3@s1 -q
[ ! -e "$top" ] || fail "revert kept $top"
new=$(sql "SELECT o.path FROM volumes v JOIN volume_owners o ON o.id = v.id
           JOIN vms m ON m.id = v.vm_id WHERE m.name = 'web-3' AND v.top = 1")
[ "$(qemu-img info -U --output=json "$new" | jget /dev/stdin 'd["full-backing-filename"]')" = "$layer" ] ||
    fail "revert's new disk is not an overlay of $layer"

# ---- gc: the expired VM it would remove, named; nothing removed
ok vmc clone T --name old --ttl 1s -q
sleep 2
unchanged ok vmc gc --dry-run > gc.out
grep -q "^would-remove *old: expired VM" gc.out || fail "gc --dry-run: $(cat gc.out)"
unchanged ok vmc gc --dry-run --json > gc.json
[ "$(jget gc.json '[f["subject"] for f in d["findings"] if f["action"] == "would-remove"]')" = "['old']" ] ||
    fail "gc --dry-run --json: $(cat gc.json)"
ok vmc gc -q
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'old'")" = 0 ] || fail "gc kept the expired VM"

echo OK
