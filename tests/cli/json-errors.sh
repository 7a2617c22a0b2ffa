#!/bin/bash
# json-errors: with --json, a management command that fails prints
# exactly one JSON document on stdout, {"error": {"code", "message",
# "hint"}}, whose code names the exit status (issue 13, point 1 with the
# codes of point 2); the human line stays on stderr. --json may come
# before the command. The img verbs keep qemu-img's output.
. "$(dirname "$0")/../catalog/cat-lib.sh"

# json_err CODE RC CMD...: CMD exits RC and stdout is one error document
# with code CODE and a message.
json_err() {
    local code=$1 rc=$2
    shift 2
    expect_rc "$rc" vmc "$@" > out.json
    python3 - "$code" out.json <<'PY' || fail "'$*' printed: $(cat out.json)"
import json, sys
text = open(sys.argv[2]).read()
doc, end = json.JSONDecoder().raw_decode(text)
assert text[end:].strip() == "", "more than one document"
e = doc["error"]
assert set(doc) == {"error"}, doc
assert e["code"] == sys.argv[1], e
assert isinstance(e["message"], str) and e["message"], e
assert e["hint"] is None or isinstance(e["hint"], str), e
PY
}

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
ok vmc clone T --name a -q

json_err not_found 3 info nosuch --json
json_err not_found 3 clone nosuch --name b --json
json_err not_found 3 rm nosuch --json
json_err not_found 3 --json info nosuch
json_err not_found 3 template info nosuch --json
json_err conflict 4 clone T --name a --json
json_err conflict 4 template rm T --json
json_err usage 2 list --bogus --json
[ "$(jget out.json 'd["error"]["hint"]')" = "vm-clone list --help" ] || fail "usage hint: $(cat out.json)"
json_err usage 2 clone T --json
json_err failure 1 config get no-such-key --json

# a missing store: the path in the message, init in the hint
VMCLONE_HOME=$T/typo json_err not_found 3 list --json
[ "$(jget out.json 'd["error"]["hint"]')" = "vm-clone init --home $T/typo" ] || fail "store hint: $(cat out.json)"
jget out.json 'd["error"]["message"]' | grep -q "no store at '$T/typo'" || fail "store message: $(cat out.json)"

# success is still one document, --json before the command too
vmc --json list > l.json || fail "vm-clone --json list"
[ "$(jget l.json 'len(d)')" = 1 ] || fail "--json list: $(cat l.json)"
vmc --json template list > tl.json || fail "vm-clone --json template list"
[ "$(jget tl.json 'd[0]["name"]')" = T ] || fail "--json template list: $(cat tl.json)"

# img keeps qemu-img's behaviour: no JSON error document
expect_rc 1 vmc img info --output=json nosuch.qcow2 > img.out
[ ! -s img.out ] || fail "img info printed on stdout: $(cat img.out)"
