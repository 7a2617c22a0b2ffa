#!/bin/bash
# fsck-repair: integrity as an operator sees it (issue 13, point 6). 16
# bytes flipped in a template copy: `fsck --verify` finds it by name (with
# its progress on stderr) and exits 6; a linked clone onto the damaged copy
# is refused with exit 6 naming 'vm-clone fsck --repair'; `list` shows the
# VMs on it as broken; `fsck --repair` rewrites the copy from its template
# and says so; then the clone works, fsck --verify is clean, and the
# repaired copy reads as the template.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import t t.qcow2 -q
ok vmc clone t --name a -q

copy=$(ls "$H"/primary/copy-t-disk0-*.qcow2)
[ -f "$copy" ] || fail "no template copy"
host=$(qemu-img map -U --output=json -f qcow2 "$copy" |
       python3 -c 'import json,sys; print([e["offset"] for e in json.load(sys.stdin) if e["data"] and e["start"] == 0][0])')
mode=$(stat -c %a "$copy")
chmod u+w "$copy"
python3 - "$copy" $((host + 8192)) <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(16)
    f.seek(int(sys.argv[2]))
    f.write(bytes(x ^ 0xff for x in b))
PY
chmod "$mode" "$copy"

# found by name, with progress, exit 6
rc=0
vmc fsck --verify > v.out 2> v.err || rc=$?
[ "$rc" = 6 ] || fail "fsck --verify on a damaged copy exited $rc, expected 6: $(cat v.out v.err)"
grep -q "problem .*template copy 't@primary' disk 0" v.out || fail "not named: $(cat v.out)"
grep -q "fsck: verifying template copy 't@primary' disk 0 (2 of 2)" v.err ||
    fail "no progress by name: $(cat v.err)"

# a clone onto it is refused, exit 6, with the repair command
expect_rc 6 vmc clone t --name b
grep -q "vm-clone fsck --repair" "$T/vmc.err" || fail "no repair command: $(cat "$T/vmc.err")"
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'b'")" = 0 ] || fail "a VM row was left"
vmc list --json > l.json
[ "$(jget l.json '[e["state"] for e in d if e["name"] == "a"][0]')" = broken ] ||
    fail "a VM on the damaged copy is not broken: $(cat l.json)"

# repair
vmc fsck --repair --json > r.json || fail "fsck --repair: $(cat r.json)"
[ "$(jget r.json 'd["inconsistencies"]')" = 0 ] || fail "left: $(cat r.json)"
[ "$(jget r.json '[f["action"] for f in d["findings"] if "t@primary" in f["subject"]]')" = "['fixed']" ] ||
    fail "not reported as fixed: $(cat r.json)"
[ "$(stat -c %a "$copy")" = "$mode" ] || fail "mode of the repaired copy: $(stat -c %a "$copy")"
ok vmc clone t --name b -q
ok vmc fsck --verify -q
qemu-img compare -U -f qcow2 -F qcow2 t.qcow2 "$copy" > /dev/null ||
    fail "the repaired copy differs from the template"
vmc list --json > l2.json
[ "$(jget l2.json '[e["state"] for e in d]')" = "['ready', 'ready']" ] || fail "after repair: $(cat l2.json)"
exit 0
