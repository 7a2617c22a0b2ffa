#!/bin/bash
# escape: labels and request ids are printed escaped (issue 9 finding 11,
# output side): a newline in a label cannot forge a row of 'vm-clone
# list', and ESC or other control bytes never reach the terminal. The
# strings are written into the catalog directly, as an older catalog (or
# one written before labels were validated) may hold them; JSON output
# carries them unchanged (json escapes them itself).
. "$(dirname "$0")/../lib.sh"
requires sqlite3 --version

export VMCLONE_HOME=$T/home
vmc init -q || fail "vm-clone init"

ok vmc img create -q -f qcow2 t.qcow2 4M
ok vmc template import tmpl t.qcow2 -q
ok vmc clone tmpl --name vm1 -q --label team=a

forged=$'x\nevil     ready    linked'
esc=$'\e[31mred\\'
sqlite3 -batch "$VMCLONE_HOME/catalog.db" \
    "UPDATE labels SET value = '$forged' || char(7) || '$esc';
     UPDATE vms SET request_id = 'r' || char(10) || 'id' || char(27) WHERE name = 'vm1';" ||
    fail "cannot write the catalog"

# no control byte but the newlines that end lines, in any text output
no_controls() {
    if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$1"; then
        fail "$2 printed control bytes: $(od -c "$1" | head -5)"
    fi
}

vmc list > list.out || fail "list failed"
[ "$(wc -l < list.out)" = 2 ] || fail "list printed a forged row: $(cat list.out)"
grep -qF 'team=x\nevil     ready    linked\x07\x1b[31mred\\' list.out ||
    fail "list did not escape the label: $(cat -A list.out)"
no_controls list.out list

vmc info vm1 > info.out || fail "info failed"
grep -qF 'labels:     team=x\nevil' info.out || fail "info: $(cat -A info.out)"
grep -qF 'request id: r\nid\x1b' info.out || fail "info request id: $(cat -A info.out)"
no_controls info.out info

# JSON keeps the value itself
vmc list --json > list.json || fail "list --json failed"
python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[0]["labels"]["team"]; sys.exit(0 if "\n" in v and "\x1b" in v else 1)' list.json ||
    fail "list --json changed the label: $(cat list.json)"
exit 0
