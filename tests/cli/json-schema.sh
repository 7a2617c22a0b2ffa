#!/bin/bash
# json-schema: with --json every command prints exactly one JSON document
# on stdout, on success and on failure, and each one is valid against its
# schema in docs/schema/ (error.json for a failure, whose code names the
# exit status): snake_case keys, one type per key, no stray key (issue
# 13, point 1; docs/cli-contract.md). --json goes before or after the
# group and verb; the img verbs take --json and --output=json.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../catalog/cat-lib.sh"

SCHEMAS=$HERE/../../docs/schema
PY=python3
if ! $PY -c 'import jsonschema' 2>/dev/null; then
    /usr/bin/python3 -c 'import jsonschema' 2>/dev/null ||
        fail "python3-jsonschema is missing (scripts/install-deps.sh installs it)"
    PY=/usr/bin/python3
fi

MANIFEST=$T/manifest
: > "$MANIFEST"
n=0
# J SCHEMA RC ARGS...: vm-clone ARGS exits RC; its stdout is checked
# against SCHEMA (or error.json when RC is not 0) after the run.
J() {
    local schema=$1 want=$2 rc=0
    shift 2
    n=$((n + 1))
    "$VMCLONE" "$@" > "$T/doc-$n.json" 2> "$T/doc-$n.err" || rc=$?
    grep -qE 'Sanitizer|runtime error:' "$T/doc-$n.err" &&
        fail "sanitizer report from: vm-clone $*: $(cat "$T/doc-$n.err")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$schema" "$want" "$rc" "$T/doc-$n.json" \
        "vm-clone $*" >> "$MANIFEST"
}

mk_template t.qcow2
qemu-img create -q -f qcow2 -b t.qcow2 -F qcow2 o.qcow2
mkdir -p extra

# ---- the store, pools, templates
J init 0 init --json
J init 0 --json init
J pool-add 0 pool add fast "$T/extra" --json
J pool-list 0 --json pool list
J pool-set 0 pool set fast --max-clones-per-base 3 --json
J pool-set 0 pool set fast --max-clones-per-base default --json
J error 2 pool set fast --max-clones-per-base -1 --json
J error 3 pool set nosuch --max-clones-per-base 3 --json
J error 4 pool add fast "$T/extra" --json
J template-info 0 template import T t.qcow2 --json
J error 4 template import T t.qcow2 --json
echo "not an image" > text.img
J error 6 template import U text.img -f qcow2 --json
J template-list 0 template list --json
J template-info 0 template --json info T
J error 3 template info nosuch --json

# ---- clones
J clone 0 clone T --name a --label env=ci --label note=a,b=c --ttl 1h --json
J clone 0 --json clone T --name b --request-id job-1
J clone 0 clone T --name b --request-id job-1 --json
J error 4 clone T --name c --request-id job-1 --json
J error 4 clone T --name a --json
J error 3 clone nosuch --name x --json
J error 2 clone T --json
J error 4 clone T --instant --name i1 --json
J error 4 template freeze a --name F --json
# a freeze needs a running QEMU: TCG, no guest (the BIOS finds no boot disk)
if command -v qemu-system-x86_64 > /dev/null; then
    "$VMCLONE" clone T --name fz -q || fail "clone T --name fz"
    "$VMCLONE" start fz --freezable --memory-dir "$T" --direct --accel tcg \
        --serial "$T/a.log" < /dev/null > /dev/null 2> "$T/a.err" &
    fpid=$!
    for _ in $(seq 1 600); do
        ls "${VMCLONE_HOME:-$HOME/.vmclone}"/run/instant/*.json > /dev/null 2>&1 && break
        sleep 0.1
    done
    J template-freeze 0 template freeze fz --name F --json
    wait "$fpid" || fail "start fz --freezable: $(cat "$T/a.err")"
    # F sits on T's copy and fz on F (frozen in place): both go, so that
    # T's dependents below are VMs
    "$VMCLONE" rm fz -q || fail "rm fz"
    J template-gone 0 template rm F --json
    # start --detach: QEMU runs on under the pid of the document
    J start-detach 0 start b --direct --accel tcg --detach --json
    cleanup_fn "kill $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
        "$T/doc-$n.json" 2> /dev/null) 2> /dev/null"
    J stop 0 stop b --json
    J stop 0 stop b --json
    J error 3 stop nosuch --json
fi
J list 0 list --json
J list 0 list --label env=ci --json
J error 2 list --bogus --json
J info 0 info a --json
J clone 0 clone T --name seeded --hostname h1 --ephemeral --json
J info 0 info seeded --json
J error 3 --json info nosuch

# ---- snapshots
J snapshot 0 snapshot create a s1 --json
J snapshot-list 0 --json snapshot list a
J error 3 snapshot list nosuch --json
J clone 0 clone a@s1 --name c --json
J clone 0 clone a --name d --full --json
J error 4 rm a --json
J error 3 snapshot create nosuch s --json
J error 4 snapshot rm a s1 --json
J deps 0 deps T --json
J deps 0 deps a@s1 --json
J error 3 deps nosuch --json
J tree 0 tree --json
J du 0 du --json
J info 0 info c --json
J snapshot 0 snapshot create b s2 --json
J snapshot-revert-dry-run 0 snapshot revert b@s2 --dry-run --json
J error 3 snapshot revert b@nosuch --dry-run --json
J snapshot 0 snapshot revert b@s2 --json
J snapshot 0 snapshot rm b s2 --json

# ---- rewrites
J flatten-dry-run 0 flatten c --dry-run --json
J flatten 0 flatten c --json
J error 3 flatten nosuch --json
J consolidate-dry-run 0 consolidate a --dry-run --json
J consolidate 0 consolidate a --json
J relink 0 relink d --template T --json
J error 2 relink d --json
J template-info 0 template create T2 --from-vm a --json
J template-dry-run 0 template retire T2 --dry-run --json
J template-gone 0 template retire T2 --json
J template-dry-run 0 template rm T --flatten-dependents --dry-run --json
J error 4 template rm T --dry-run --json
J error 4 template rm T --json

# ---- VM export
J vm-qemu-cmd 0 vm qemu-cmd a --json
J vm-qemu-cmd 0 --json vm qemu-cmd a
J vm-xml 0 vm xml a --json
J error 3 vm xml nosuch --json
J error 3 vm qemu-cmd nosuch --json
mkdir -p "$T/export"
J export 0 export a --output "$T/export" --format vmdk --json
J export 0 export a --output "$T/export" --format ova --json
J error 4 export a --output "$T/export" --format vmdk --json
J error 3 export nosuch --output "$T/export" --json
# libvirt's in-process test driver: a fresh host for each call (a build
# without libvirt refuses define: exit 1)
if pkg-config --exists libvirt 2>/dev/null; then
    J vm-define 0 vm define a --connect test:///default --json
    J vm-undefine 0 vm undefine a --json
fi
J error 3 vm undefine a --json
J start-dry-run 0 start a --dry-run --json
J start-dry-run 0 --json start a --nbd --dry-run
J error 3 start nosuch --dry-run --json

# ---- config
J config-set 0 config set default-template T --json
J config-get 0 config get default-template --json
J config-get 0 config get --json
J config-set 0 config unset default-template --json
J error 1 config get no-such-key --json
J config-show 0 config show --json

# ---- removal, gc, fsck
J rm 0 rm d --dry-run --json
J rm 0 rm d --json
J rm 0 rm nosuch --missing-ok --json
J rm 0 rm --label env=ci --dry-run --json
J error 3 rm nosuch --json
J error 2 rm --json
J gc 0 gc --dry-run --json
J gc 0 gc --json
J fsck 0 fsck --json
J error 2 fsck --bogus --json
J pool-rm 0 pool rm fast --json
J error 3 pool rm nosuch --json

# ---- a missing store: every command says so, as one document
VMCLONE_HOME=$T/typo J error 3 list --json
VMCLONE_HOME=$T/typo J error 3 template list --json
[ ! -e "$T/typo" ] || fail "a command created the store $T/typo"

# ---- the img verbs: --json and --output=json alike
for opt in --json --output=json; do
    J img-info 0 img info "$opt" o.qcow2
    J img-info 0 img info "$opt" --backing-chain o.qcow2
    J img-map 0 img map "$opt" o.qcow2
    J img-check 0 img check "$opt" o.qcow2
    J img-du 0 img du "$opt" o.qcow2
done
J img-info 0 --json img info o.qcow2
J img-info 0 img --json info o.qcow2
J img-clone 0 img clone --linked --json t.qcow2 lc.qcow2
J img-clone 0 img clone --full --output=json t.qcow2 fc.qcow2
cp t.qcow2 sealed.qcow2
J img-seal 0 img seal --json sealed.qcow2
J img-verify 0 img verify --json sealed.qcow2
J img-verify 0 img verify --output=json sealed.qcow2
J error 1 img info --json nosuch.qcow2
J error 1 img map --json nosuch.qcow2
J error 1 img check --json nosuch.qcow2
J error 1 img verify --json t.qcow2
J error 1 img clone --linked --json nosuch.qcow2 x.qcow2
J error 2 img clone --json t.qcow2 y.qcow2

# --output=json keeps qemu-img's behaviour on failure: nothing on stdout
rc=0
"$VMCLONE" img info --output=json nosuch.qcow2 > img.out 2>/dev/null || rc=$?
[ "$rc" = 1 ] && [ ! -s img.out ] || fail "img info --output=json on a missing file: exit $rc, stdout $(cat img.out)"

"$PY" "$HERE/json-validate.py" "$SCHEMAS" "$MANIFEST" ||
    fail "JSON documents do not follow docs/schema"
