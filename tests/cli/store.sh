#!/bin/bash
# store: no silent stores (issue 13, point 4). Only `vm-clone init`
# creates a store; every other command on a missing store fails with
# exit 3, naming the path it looked at and the command that makes one,
# and creates nothing. init on an existing store changes nothing and
# says so (exit 0). `config show` prints the store in use.
. "$(dirname "$0")/../lib.sh"

export VMCLONE_HOME=$T/typo
unset XDG_DATA_HOME

missing() {
    expect_rc 3 vmc "$@"
    err_matches "no store at '$T/typo'"
    err_matches "vm-clone init --home $T/typo"
    [ ! -e "$T/typo" ] || fail "'$*' created a store at $T/typo"
}

missing list
missing list --json
missing info vm1
missing rm --missing-ok vm1
missing rm vm1 --dry-run
missing clone T --name x
missing --linked --name x --template T
missing template list
missing template import T t.qcow2
missing pool list
missing config get
missing config show
missing snapshot list vm1
missing tree
missing deps T
missing du
missing gc --dry-run
missing fsck
missing flatten vm1
missing vm xml vm1
# an empty directory is not a store either
mkdir "$T/typo"
expect_rc 3 vmc list
err_matches "no store at"
[ ! -e "$T/typo/catalog.db" ] || fail "list made a catalog in an empty directory"
rmdir "$T/typo"
# --home names the path in the message too
expect_rc 3 vmc --home "$T/other" list
err_matches "no store at '$T/other'.*init --home $T/other"
[ ! -e "$T/other" ] || fail "--home: a store was created"

# init creates it, once; a second init says it exists
vmc init > init.out || fail "init"
grep -q "^Created store '$T/typo'" init.out || fail "init said: $(cat init.out)"
[ -e "$T/typo/catalog.db" ] || fail "init made no catalog"
vmc init > init2.out || fail "init on an existing store"
grep -q "^Store '$T/typo' already exists" init2.out || fail "second init said: $(cat init2.out)"
vmc init --json > init.json || fail "init --json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["created"] is False and d["home"] == sys.argv[2]' \
    init.json "$T/typo" || fail "init --json: $(cat init.json)"
ok vmc list -q

# config show: the store in use
vmc config show > show.out || fail "config show"
grep -qx "store: $T/typo" show.out || fail "config show: $(cat show.out)"
grep -q "^pool: *primary *primary *$T/typo/primary" show.out || fail "config show pools: $(cat show.out)"
vmc config show --json > show.json || fail "config show --json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["home"] == sys.argv[2] and len(d["pools"]) == 2' \
    show.json "$T/typo" || fail "config show --json: $(cat show.json)"
