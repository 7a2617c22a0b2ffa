#!/bin/bash
# fsck-verify: `fsck --verify` verifies the seal of every sealed template
# and template copy, by name (issue 9 finding 14, the rest): 16 bytes
# flipped in a template copy's data are reported as an inconsistency naming
# the copy (exit non-zero); plain fsck does not read the data; an intact
# store verifies clean.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import t t.qcow2 -q
ok vmc clone t --name a -q
ok vmc fsck --verify --json > clean.json
[ "$(jget clean.json 'd["verified"]')" = 2 ] || fail "verified: $(cat clean.json)"
[ "$(jget clean.json 'd["inconsistencies"]')" = 0 ] || fail "intact store: $(cat clean.json)"

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

ok vmc fsck --json > plain.json
[ "$(jget plain.json 'd["inconsistencies"]')" = 0 ] || fail "plain fsck: $(cat plain.json)"
rc=0
vmc fsck --verify --json > v.json || rc=$?
[ "$rc" != 0 ] || fail "fsck --verify exited 0 on a damaged copy: $(cat v.json)"
[ "$(jget v.json 'd["inconsistencies"]')" = 1 ] || fail "inconsistencies: $(cat v.json)"
jget v.json '[f for f in d["findings"] if f["action"] == "problem"][0]["subject"]' > subj
grep -q "template copy 't@primary' disk 0" subj || fail "the damaged copy is not named: $(cat v.json)"
jget v.json '[f for f in d["findings"] if f["action"] == "problem"][0]["detail"]' |
    grep -q "seal verification failed: 1 of" || fail "detail: $(cat v.json)"
# the text form names it too
rc=0
vmc fsck --verify > v.txt || rc=$?
grep -q "problem .*template copy 't@primary' disk 0" v.txt || fail "text: $(cat v.txt)"
exit 0
