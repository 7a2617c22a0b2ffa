#!/bin/bash
# schema-ops: the JSON of list, gc and fsck (opsview's commands) validates
# against docs/schema/list.json, gc.json and fsck.json (draft 2020-12, no
# stray keys), in the states that give each key its values: a VM from a
# template, one from a snapshot with labels and a TTL, an expired one, a
# broken one; gc for real and --dry-run; fsck plain, --verify, damaged.
. "$(dirname "$0")/../catalog/cat-lib.sh"
python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed"

SCHEMA=$TESTS_DIR/../docs/schema
valid() {       # valid SCHEMA FILE
    python3 - "$SCHEMA/$1" "$2" <<'PY' || fail "$2 does not follow $1: $(cat "$2")"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(json.load(open(sys.argv[2])))
PY
}

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
ok vmc clone T --name a -q
ok vmc snapshot create a s -q
ok vmc clone a@s --name b --label team=x --ttl 1h -q
ok vmc clone T --name old --ttl 1s -q
ok vmc clone T --name gone -q
rm -f "$(vmc info gone --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')"
sleep 1.2
vmc list --json > list.json || fail "list"
valid list.json list.json
[ "$(jget list.json 'sorted(set(e["state"] for e in d))')" = "['broken', 'expired', 'ready']" ] ||
    fail "states: $(cat list.json)"
vmc list --state nosuch --json > /dev/null 2>&1 && fail "a bad state was taken"
vmc list --name 'zz*' --json > empty.json || fail "list empty"
valid list.json empty.json

vmc gc --dry-run --json > gcd.json || fail "gc --dry-run"
valid gc.json gcd.json
vmc gc --json > gc.json || fail "gc"
valid gc.json gc.json
[ "$(jget gc.json 'd["removed"]')" = "['old']" ] || fail "gc removed: $(cat gc.json)"

vmc fsck --json > f.json
valid fsck.json f.json
vmc fsck --verify --json > fv.json
valid fsck.json fv.json
exit 0
