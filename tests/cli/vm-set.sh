#!/bin/bash
# vm-set: a VM's labels, TTL, CPUs, memory and NICs change after its clone
# (issue 13, point 5: `vm set`), each change a compare-and-set on the row
# it read; bad values are usage errors (2), a missing VM 3, nothing changes
# on a refusal. And one definition of "dependents": template list, template
# info and deps count the same VMs and snapshots (a clone of a clone's
# snapshot included).
. "$(dirname "$0")/../catalog/cat-lib.sh"

mk_template t.qcow2
ok vmc template import T t.qcow2 -q --cpus 2 --memory 1024 --nics 1
ok vmc clone T --name web --label team=a --label tier=front -q

ok vmc vm set web --label team=b --label env=ci --unlabel tier --ttl 2h \
    --cpus 4 --memory 2G --nics 3 -q
vmc info web --json > i.json || fail "info"
[ "$(vmc list --name web --json | jget /dev/stdin 'd[0]["labels"]')" = "{'env': 'ci', 'team': 'b'}" ] || fail "labels: $(cat i.json)"
[ "$(jget i.json 'd["cpus"]')" = 4 ] || fail "cpus: $(cat i.json)"
[ "$(jget i.json 'd["memory_mb"]')" = 2048 ] || fail "memory: $(cat i.json)"
[ "$(jget i.json 'len(d["nics"])')" = 3 ] || fail "nics: $(cat i.json)"
[ "$(sql "SELECT count(DISTINCT mac) FROM nics")" = 3 ] || fail "MACs not unique"
left=$(sql "SELECT CAST(expires - strftime('%s','now') AS INTEGER) FROM vms WHERE name = 'web'")
[ "$left" -gt 7100 ] && [ "$left" -le 7200 ] || fail "ttl: expires in $left s"
mac0=$(jget i.json 'd["nics"][0]["mac"]')

# fewer NICs keeps the first ones; --ttl never removes the expiry
ok vmc vm set web --nics 1 --ttl never -q
vmc info web --json > i2.json
[ "$(jget i2.json '[n["mac"] for n in d["nics"]]')" = "['$mac0']" ] || fail "nics 1: $(cat i2.json)"
[ "$(sql "SELECT expires IS NULL FROM vms WHERE name = 'web'")" = 1 ] || fail "--ttl never"
vmc list --json | jget /dev/stdin '[e["expires"] for e in d]' | grep -q None || fail "list expires"

# refusals change nothing
before=$(sql "SELECT cpus, memory_mb, expires FROM vms; SELECT * FROM labels; SELECT * FROM nics")
expect_rc 2 vmc vm set web --cpus 0
expect_rc 2 vmc vm set web --nics 40
expect_rc 2 vmc vm set web --ttl soon
expect_rc 2 vmc vm set web --label novalue
expect_rc 2 vmc vm set web
expect_rc 3 vmc vm set nosuch --cpus 2
expect_rc 1 vmc vm set web --label 'bad key=1' --cpus 8
[ "$(sql "SELECT cpus, memory_mb, expires FROM vms; SELECT * FROM labels; SELECT * FROM nics")" = "$before" ] ||
    fail "a refused vm set changed the VM"

# the compare-and-set: `vm set --cpus 8` paused between its read and its
# write while another `vm set` changes a label: the paused one is refused
# as busy (5, retry) and changes nothing; the other's change stays
mkdir "$T/pause"
VMCLONE_PAUSE_AT=vm-set.after-read VMCLONE_PAUSE_DIR=$T/pause \
    "$VMCLONE" vm set web --cpus 8 > p.out 2> p.err &
pid=$!
for _ in $(seq 1 1000); do
    [ -e "$T/pause/paused" ] && break
    sleep 0.01
done
[ -e "$T/pause/paused" ] || fail "vm set never paused: $(cat p.err)"
ok vmc vm set web --label raced=yes -q
touch "$T/pause/go"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 5 ] || fail "a vm set on a row changed meanwhile exited $rc: $(cat p.err)"
grep -q "changed by another command" p.err || fail "message: $(cat p.err)"
[ "$(sql "SELECT cpus FROM vms WHERE name = 'web'")" = 4 ] || fail "the refused change was made"
[ "$(sql "SELECT value FROM labels WHERE key = 'raced'")" = yes ] || fail "the other change was lost"

# dependents: one count in template list, template info and deps
ok vmc clone T --name plain --full -q
ok vmc snapshot create web s1 -q
ok vmc clone web@s1 --name grand -q
vmc template list --json > tl.json || fail "template list"
vmc template info T --json > ti.json || fail "template info"
vmc deps T --json > d.json || fail "deps"
n_list=$(jget tl.json '[t["dependent_count"] for t in d if t["name"] == "T"][0]')
n_info=$(jget ti.json 'len(d["dependents"])')
n_deps=$(jget d.json 'len(d)')
[ "$n_list" = "$n_info" ] && [ "$n_info" = "$n_deps" ] ||
    fail "dependents of T: template list $n_list, template info $n_info, deps $n_deps"
# web (its layers), its snapshot, grand (through web@s1); not the full clone
[ "$n_deps" = 3 ] || fail "deps T: $(cat d.json)"
vmc template list > tl.txt
grep -q "^T .* 3  primary" tl.txt || fail "template list text: $(cat tl.txt)"
exit 0
