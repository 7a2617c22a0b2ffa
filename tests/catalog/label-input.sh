#!/bin/bash
# label-input: labels are validated where they enter the catalog (issue 9
# finding 11, input side): a key of [A-Za-z0-9._/-] (1 to 63, starting
# with a letter or digit), a value of at most 255 bytes of printable UTF-8.
# A newline (which forged a `list` row), an escape sequence, a C1 control,
# invalid UTF-8 or an oversized value is refused with a clear error and no
# VM is made; ordinary keys and UTF-8 values are kept as given.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import t t.qcow2 -q

n=0
refused() {     # refused PATTERN KEY=VALUE
    local rc=0
    n=$((n + 1))
    vmc clone t --name "bad$n" --label "$2" > out 2> err || rc=$?
    [ "$rc" != 0 ] || fail "label $(printf %q "$2") was accepted"
    grep -q "$1" err || fail "label $(printf %q "$2"): no clear refusal: $(cat err)"
    [ "$(sql "SELECT count(*) FROM vms")" = 0 ] || fail "a VM was made for $(printf %q "$2")"
}
refused "printable" "$(printf 'owner=alice\nv9 ready')"
refused "printable" "$(printf 'owner=\033[2J\033[31mred')"
refused "printable" "$(printf 'owner=a\302\233b')"
refused "printable" "$(printf 'owner=a\377b')"
refused "printable" "$(printf 'owner=tab\there')"
refused "longer than 255" "owner=$(printf 'x%.0s' $(seq 1 256))"
refused "invalid label key" "$(printf 'ow\nner=x')"
refused "invalid label key" "bad key=x"
refused "invalid label key" "-lead=x"
refused "invalid label key" "$(printf 'k%.0s' $(seq 1 64))=x"

ok vmc clone t --name good --label "app.example/tier-1=front end" \
    --label "owner=Zoë Ångström" --label "empty=" \
    --label "owner2=$(printf 'x%.0s' $(seq 1 255))" -q
[ "$(sql "SELECT value FROM labels WHERE key = 'owner'")" = "Zoë Ångström" ] ||
    fail "UTF-8 value changed"
[ "$(sql "SELECT count(*) FROM labels")" = 4 ] || fail "labels: $(sql 'SELECT * FROM labels')"
exit 0
