#!/bin/bash
# list-view: the operator's view of `list` (issue 13, point 5): columns
# NAME STATE SOURCE TYPE CREATED EXPIRES SIZE LABELS, sorted by name
# whatever the order of creation; --sort created|size; filters --state,
# --source, --name GLOB, --expired (with --label); honest states: running
# while qemu-io holds a disk's write lock (with the pid), expired once the
# TTL passed, broken when a disk file is missing. The JSON carries the
# same fields (source as {kind, name, snapshot}, times ISO 8601 UTC, size
# in bytes).
. "$(dirname "$0")/../catalog/cat-lib.sh"

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
mk_template big.qcow2 32M
ok vmc template import B big.qcow2 -q
ok vmc clone T --name zeta -q
ok vmc clone B --name alpha --label team=a -q
ok vmc clone T --name mid --ttl 1s -q
ok vmc snapshot create zeta s1 -q
ok vmc clone zeta@s1 --name from-snap -q
ok vmc clone T --name gone -q
sleep 1.2

# text: the header and name order
vmc list > l.txt || fail "list"
head -1 l.txt | grep -q '^NAME  *STATE  *SOURCE  *TYPE  *CREATED  *EXPIRES  *SIZE  *LABELS$' ||
    fail "header: $(head -1 l.txt)"
[ "$(tail -n +2 l.txt | awk '{print $1}' | tr '\n' ' ')" = "alpha from-snap gone mid zeta " ] ||
    fail "not sorted by name: $(cat l.txt)"
grep -q '^from-snap  *ready  *zeta@s1 ' l.txt || fail "source column: $(cat l.txt)"
grep -q '^alpha .* team=a$' l.txt || fail "labels column: $(cat l.txt)"

# JSON: the same fields
vmc list --json > l.json || fail "list --json"
jget l.json '[sorted(e.keys()) for e in d][0]' > keys
for k in name state source type created expires size labels; do
    grep -q "'$k'" keys || fail "no '$k' in list --json: $(cat keys)"
done
[ "$(jget l.json '[e["source"] for e in d if e["name"] == "from-snap"][0]')" = \
  "{'kind': 'snapshot', 'name': 'zeta', 'snapshot': 's1'}" ] || fail "source: $(cat l.json)"
[ "$(jget l.json '[e["source"] for e in d if e["name"] == "alpha"][0]')" = \
  "{'kind': 'template', 'name': 'B', 'snapshot': None}" ] || fail "source: $(cat l.json)"
jget l.json '[e["created"] for e in d][0]' | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' ||
    fail "created not ISO 8601: $(cat l.json)"
[ "$(jget l.json '[e["expires"] for e in d if e["name"] == "zeta"][0]')" = None ] ||
    fail "expires of a VM without TTL: $(cat l.json)"
[ "$(jget l.json '[e["size"] for e in d if e["name"] == "alpha"][0]')" = 33554432 ] ||
    fail "size in bytes: $(cat l.json)"
[ "$(jget l.json '[e["labels"] for e in d if e["name"] == "alpha"][0]')" = "{'team': 'a'}" ] ||
    fail "labels object: $(cat l.json)"
[ "$(jget l.json '[e["labels"] for e in d if e["name"] == "zeta"][0]')" = "{}" ] ||
    fail "no labels: $(cat l.json)"

# expired
[ "$(jget l.json '[e["state"] for e in d if e["name"] == "mid"][0]')" = expired ] ||
    fail "a VM past its TTL is not expired: $(cat l.json)"
vmc list --expired --json > e.json || fail "list --expired"
[ "$(jget e.json '[e["name"] for e in d]')" = "['mid']" ] || fail "--expired: $(cat e.json)"

# broken: a disk file deleted behind the catalog's back
disk=$(vmc info gone --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
rm -f "$disk"
vmc list --state broken --json > b.json || fail "list --state broken"
[ "$(jget b.json '[e["name"] for e in d]')" = "['gone']" ] || fail "broken: $(cat b.json)"
jget b.json 'd[0]["reason"]' | grep -q "is missing" || fail "reason: $(cat b.json)"

# running: qemu-io holds zeta's disk open for writing
disk=$(vmc info zeta --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
mkfifo "$T/ctl"
qemu-io -f qcow2 "$disk" < "$T/ctl" > qio.out 2>&1 &
qio=$!
exec 9> "$T/ctl"
cleanup_fn "exec 9>&-; kill $qio 2>/dev/null"
echo 'write -P 0x77 0 64k' >&9
for _ in $(seq 1 200); do
    grep -q 'wrote' qio.out && break
    sleep 0.05
done
vmc list --state running --json > r.json || fail "list --state running"
[ "$(jget r.json '[e["name"] for e in d]')" = "['zeta']" ] || fail "running: $(cat r.json)"
[ "$(jget r.json 'd[0]["pid"]')" = "$qio" ] || fail "pid: $(cat r.json) (qemu-io is $qio)"
exec 9>&-
wait "$qio" || true
vmc list --name zeta --json > z.json || fail "list --name"
[ "$(jget z.json '[e["state"] for e in d]')" = "['ready']" ] || fail "after qemu-io: $(cat z.json)"

# filters and sorts
[ "$(vmc list --source T --json | jget /dev/stdin '[e["name"] for e in d]')" = "['gone', 'mid', 'zeta']" ] ||
    fail "--source T"
[ "$(vmc list --source zeta@s1 --json | jget /dev/stdin '[e["name"] for e in d]')" = "['from-snap']" ] ||
    fail "--source zeta@s1"
[ "$(vmc list --name '*a' --label team=a --json | jget /dev/stdin '[e["name"] for e in d]')" = "['alpha']" ] ||
    fail "--name GLOB with --label"
[ "$(vmc list --sort created --json | jget /dev/stdin '[e["name"] for e in d][:2]')" = "['zeta', 'alpha']" ] ||
    fail "--sort created: $(vmc list --sort created)"
[ "$(vmc list --sort size --json | jget /dev/stdin '[e["name"] for e in d][-1]')" = "alpha" ] ||
    fail "--sort size: $(vmc list --sort size)"
expect_rc 2 vmc list --state sleepy
expect_rc 2 vmc list --sort colour
exit 0
