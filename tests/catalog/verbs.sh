#!/bin/bash
# verbs: every management verb end to end on real files and a real
# catalog: init, pool, config, template import (qcow2, raw, multi-disk,
# hostile images), clone (linked, full, thick, count, labels, ttl,
# request id, short form), list/info/tree/deps/du with --json, snapshot
# create/list/revert/rm, flatten, relink, consolidate, vm xml/qemu-cmd,
# fsck; qemu-img as the oracle for every disk.
. "$(dirname "$0")/cat-lib.sh"

# --help everywhere
for v in init pool config template clone list info snapshot tree deps rm du gc \
         fsck flatten relink consolidate vm; do
    vmc "$v" --help > help.out || fail "$v --help failed"
    grep -q usage help.out || fail "$v --help prints no usage"
done
vmc --help | grep -q template || fail "top-level help lists no template"

# a fresh home works without init; init is idempotent
vmc list --json > l.json || fail "list on a fresh home"
[ "$(jget l.json 'len(d)')" = 0 ] || fail "fresh home not empty"
ok vmc init -q
[ -f "$H/${STORE_CATALOG_FILE:-catalog.db}" ] && [ -d "$H/primary" ] && [ -d "$H/secondary" ] || fail "store layout"
[ "$(sql 'PRAGMA journal_mode')" = wal ] || fail "catalog not in WAL mode"

# pools
mkdir extra
vmc pool add fast "$T/extra" --kind primary --json > pa.json || fail "pool add"
[ "$(jget pa.json '(d["pool"], d["kind"], d["action"])')" = "('fast', 'primary', 'added')" ] ||
    fail "pool add --json: $(cat pa.json)"
[ "$(jget pa.json 'd["path"]')" = "$(realpath "$T/extra")" ] || fail "pool add --json path"
vmc pool list --json > p.json
[ "$(jget p.json 'len(d)')" = 3 ] || fail "pool list"
expect_fail vmc pool add fast "$T/extra"
err_matches "already exists"

# templates
mk_template base.qcow2
qemu-img create -q -f raw data.raw 8M
qemu-io -f raw -c 'write -P 7 0 64k' data.raw >/dev/null
ok vmc template import base base.qcow2 data.raw --cpus 2 --memory 512 --nics 2 -q
vmc template info base --json > t.json
[ "$(jget t.json 'len(d["disks"])')" = 2 ] || fail "two disks expected"
for f in $(jget t.json '" ".join(x["path"] for x in d["disks"])'); do
    [ "$(stat -c %a "$f")" = 444 ] || fail "template disk $f not 0444"
    [ -f "$f.seal" ] || fail "template disk $f not sealed"
done
qemu-img compare -q -f qcow2 -F qcow2 base.qcow2 "$(jget t.json 'd["disks"][0]["path"]')" ||
    fail "template disk 0 differs from its source"
ok vmc img verify "$(jget t.json 'd["disks"][0]["path"]')" >/dev/null
expect_fail vmc template import base base.qcow2
err_matches "already exists"

# hostile: a backing file (here /etc/passwd as raw) is refused, never opened
qemu-img create -q -f qcow2 -b /etc/passwd -F raw -u evil.qcow2 16M
expect_fail vmc template import evil evil.qcow2
err_matches "backing file"
vmc template list --json > tl.json
[ "$(jget tl.json 'len(d)')" = 1 ] || fail "refused import left a template"
# --flatten copies the guest view of a regular chain, refuses devices
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2
qemu-io -f qcow2 -c 'write -P 0x33 2M 64k' over.qcow2 >/dev/null
ok vmc template import flat over.qcow2 --flatten -q
qemu-img create -q -f qcow2 -b /dev/null -F raw -u dev.qcow2 1M
expect_fail vmc template import devt dev.qcow2 --flatten
err_matches "not a regular file"

# linked clone: overlay of the copy in the primary pool, made once
vmc clone base --name vm1 --label team=qa --json > c.json || fail "clone"
[ "$(jget c.json 'd["type"]')" = linked ] || fail "type"
[ "$(jget c.json 'd["mechanism"]')" = overlay ] || fail "mechanism"
[ "$(jget c.json 'd["template_copy"]["made"]')" = True ] || fail "first use copies"
vmc clone base --name vm2 --json > c2.json || fail "clone 2"
[ "$(jget c2.json 'd["template_copy"]["made"]')" = False ] || fail "second use copied again"
[ "$(sql "SELECT count(*) FROM template_copies")" = 1 ] || fail "copy rows"
vmc info vm1 --json > i.json
[ "$(jget i.json 'len(d["disks"])')" = 2 ] || fail "vm1 disks"
[ "$(jget i.json 'len(d["nics"])')" = 2 ] || fail "vm1 nics"
[ "$(jget i.json 'd["disks"][0]["chain"][1]["kind"]')" = copy ] || fail "vm1 backing is not the copy"
d0=$(jget i.json 'd["disks"][0]["path"]')
qemu-img compare -q -f qcow2 -F qcow2 base.qcow2 "$d0" || fail "clone content"
[ "$(sql "SELECT count(DISTINCT mac) FROM nics")" = "$(sql "SELECT count(*) FROM nics")" ] ||
    fail "MACs not unique"

# count + label + ttl + request id
ok vmc clone base --name 'ci-%d' --count 5 --label job=ci --ttl 1h -q
vmc list --label job=ci --json > lc.json
[ "$(jget lc.json 'len(d)')" = 5 ] || fail "--count 5 / --label"
vmc clone base --name rq --request-id abc --json > r1.json || fail "request 1"
vmc clone base --name rq --request-id abc --json > r2.json || fail "request 2"
[ "$(jget r2.json 'd["existing"]')" = True ] || fail "retried request made a new VM"
[ "$(jget r2.json 'd["vms"][0]')" = rq ] || fail "retried request returned another VM"
# the same id for another call (another name): refused, conflict
expect_rc 4 vmc clone base --name rq-again --request-id abc
expect_fail vmc info rq-again

# the seed's short form
expect_fail vmc --linked --name nodef
err_matches "default-template"
vmc config set default-template base --json > cs.json || fail "config set"
[ "$(jget cs.json '(d["key"], d["value"], d["set"])')" = "('default-template', 'base', True)" ] ||
    fail "config set --json: $(cat cs.json)"
vmc config set max-chain-depth 12 --json > cs2.json || fail "config set 2"
vmc config unset max-chain-depth --json > cu.json || fail "config unset"
[ "$(jget cu.json '(d["key"], d["value"], d["set"])')" = "('max-chain-depth', None, False)" ] ||
    fail "config unset --json: $(cat cu.json)"
[ "$(vmc config get default-template)" = base ] || fail "config get"
vmc --linked --name unit-test-42 --json > s.json || fail "short form"
[ "$(jget s.json 'd["type"]')" = linked ] || fail "short form type"
vmc --full --name ProdServer-20261122 --thick --json > f.json || fail "full thick"
[ "$(jget f.json 'd["requested"]')" = full ] && [ "$(jget f.json 'd["type"]')" = full ] ||
    fail "full clone type"
fp=$(vmc info ProdServer-20261122 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
qemu-img info --output=json "$fp" | grep -q backing-filename && fail "full clone has a backing file"
qemu-img compare -q -f qcow2 -F qcow2 base.qcow2 "$fp" || fail "full clone content"
[ "$(stat -c %a "$fp")" != 444 ] || fail "full clone is read-only"
qemu-io -f qcow2 -c 'write -P 1 0 4k' "$fp" >/dev/null || fail "full clone not writable"
expect_fail vmc --linked --name x --thick

# snapshots: a lab of clones from a VM's snapshot
qemu-io -f qcow2 -c 'write -P 0x11 4M 64k' "$d0" >/dev/null
vmc snapshot create vm1 CleanInstall --json > sc.json || fail "snapshot create"
[ "$(jget sc.json '(d["vm"], d["snapshot"], d["action"])')" = "('vm1', 'CleanInstall', 'created')" ] ||
    fail "snapshot create --json: $(cat sc.json)"
expect_fail vmc clone vm1 --linked --name nosnap
err_matches "needs a snapshot"
ok vmc clone vm1 --snapshot CleanInstall --name 'lab-%02d' --count 3 -q
vmc info lab-01 --json > lab.json
lp=$(jget lab.json 'd["disks"][0]["path"]')
qemu-io -r -U -f qcow2 -c 'read -P 0x11 4M 64k' "$lp" | grep -q 'read 65536' || fail "lab clone does not see the snapshot"
vmc snapshot list vm1 --json > sl.json
[ "$(jget sl.json 'd[0]["name"]')" = CleanInstall ] || fail "snapshot list"
# after the snapshot the VM writes its own overlay
d0=$(vmc info vm1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
qemu-io -f qcow2 -c 'write -P 0x22 4M 64k' "$d0" >/dev/null
vmc snapshot revert vm1 CleanInstall --json > sr.json || fail "snapshot revert"
[ "$(jget sr.json 'd["action"]')" = reverted ] || fail "snapshot revert --json: $(cat sr.json)"
d0=$(vmc info vm1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
qemu-io -f qcow2 -c 'read -P 0x11 4M 64k' "$d0" | grep -q 'read 65536' || fail "revert"
expect_fail vmc snapshot rm vm1 CleanInstall
err_matches "lab-01"

# deps, rm refusals, tree, du
vmc deps vm1@CleanInstall --json > dp.json
[ "$(jget dp.json 'len(d)')" -ge 4 ] || fail "deps of the snapshot"
expect_fail vmc rm vm1
err_matches "dependent"
expect_fail vmc template rm base
err_matches "dependent"
vmc tree > tree.out || fail tree
grep -q "template base" tree.out && grep -q "copy base@primary" tree.out &&
    grep -q "snapshot vm1@CleanInstall" tree.out && grep -q "vm lab-01" tree.out || fail "tree: $(cat tree.out)"
vmc tree --json --bytes > tree.json || fail "tree --json"
jget tree.json 'd[0]["children"][0]["kind"]' | grep -q copy || fail "tree json"
vmc du --json > du.json || fail du
[ "$(jget du.json 'd[0]["image_count"]')" -gt 5 ] || fail "du"

# rm the lab, then the snapshot merges into the VM's layer
vmc rm lab-01 lab-02 lab-03 --json > rm.json || fail "rm"
[ "$(jget rm.json 'd["removed"]')" = "['lab-01', 'lab-02', 'lab-03']" ] || fail "rm --json: $(cat rm.json)"
[ "$(jget rm.json 'd["templates_freed"]')" = "[]" ] || fail "rm --json freed: $(cat rm.json)"
vmc snapshot rm vm1 CleanInstall --json > srm.json || fail "snapshot rm"
[ "$(jget srm.json '(d["vm"], d["snapshot"], d["action"])')" = "('vm1', 'CleanInstall', 'removed')" ] ||
    fail "snapshot rm --json: $(cat srm.json)"
qemu-io -r -U -f qcow2 -c 'read -P 0x11 4M 64k' "$d0" | grep -q 'read 65536' || fail "snapshot rm lost data"

# consolidate a chain of snapshots
ok vmc snapshot create vm2 a -q
ok vmc snapshot create vm2 b -q
ok vmc snapshot create vm2 c -q
vmc consolidate vm2 --json > co.json || fail consolidate
[ "$(jget co.json 'd["layers_merged"]')" -ge 1 ] || fail "consolidate merged nothing"
qemu-img compare -q -f qcow2 -F qcow2 base.qcow2 "$(vmc info vm2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')" ||
    fail "consolidate changed the content"

# flatten and relink
ok vmc flatten vm2 -q
[ "$(vmc info vm2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')" = full ] || fail "flatten type"
ok vmc relink ProdServer-20261122 --template base -q
[ "$(vmc info ProdServer-20261122 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')" = linked ] ||
    fail "relink type"
qemu-io -r -U -f qcow2 -c 'read -P 1 0 4k' -c 'read -P 0x5a 4k 60k' "$fp" | grep -c 'read ' | grep -q 2 ||
    fail "relink changed the content"

# hypervisor export
vmc vm xml vm1 > vm1.xml || fail "vm xml"
grep -q "<driver name='qemu' type='qcow2'/>" vm1.xml && grep -q backingStore vm1.xml || fail "xml content"
if command -v virt-xml-validate >/dev/null 2>&1; then
    virt-xml-validate vm1.xml domain >/dev/null || fail "virt-xml-validate: $(virt-xml-validate vm1.xml domain 2>&1)"
else
    note "virt-xml-validate not installed (libvirt-clients): XML not validated"
fi
vmc vm qemu-cmd vm1 > q.out || fail "qemu-cmd"
grep -q "format=qcow2" q.out && grep -q "qemu-system-x86_64" q.out || fail "qemu-cmd content"

# template create from a VM
ok vmc template create golden --from-vm vm1 -q
vmc template info golden --json > g.json
qemu-img compare -q -f qcow2 -F qcow2 "$d0" "$(jget g.json 'd["disks"][0]["path"]')" || fail "template from VM"

# template rm --json (with and without dependents to flatten)
ok vmc template import spare base.qcow2 -q
vmc template rm spare --json > tr.json || fail "template rm"
[ "$(jget tr.json '(d["template"], d["action"], d["flattened"])')" = "('spare', 'removed', [])" ] ||
    fail "template rm --json: $(cat tr.json)"
ok vmc template import spare2 base.qcow2 -q
ok vmc clone spare2 --name sp1 -q
vmc template rm spare2 --flatten-dependents --json > tr2.json || fail "template rm --flatten-dependents"
[ "$(jget tr2.json 'd["flattened"]')" = "[{'kind': 'vm', 'name': 'sp1'}]" ] || fail "template rm --flatten-dependents --json: $(cat tr2.json)"
[ "$(vmc info sp1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')" = full ] ||
    fail "sp1 not flattened"
expect_fail vmc template import x base.qcow2 --flatten-dependents
err_matches "applies to rm and retire"

# pool rm refuses a non-empty pool, removes an empty one
vmc pool rm fast --json > pr.json || fail "pool rm"
[ "$(jget pr.json '(d["pool"], d["action"])')" = "('fast', 'removed')" ] || fail "pool rm --json: $(cat pr.json)"
expect_fail vmc pool rm primary

check_all_disks
fsck_clean
# fsck -q: nothing at all when clean
vmc fsck -q > fq.out || fail "fsck -q"
[ ! -s fq.out ] || fail "fsck -q printed: $(cat fq.out)"
[ "$(sql 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
