#!/bin/bash
# refusals (suite instant, plain and ASan): instant templates and clones
# (issue 16) with a real QEMU under TCG but no guest kernel (the BIOS
# finds nothing to boot and waits): the QEMU command lines, the freeze,
# the catalog's bookkeeping and every refusal.
#  - --memory-dir without --freezable: usage (2); freezing a VM not
#    started --freezable: exit 4 with the reason;
#  - start --freezable: RAM in a share=on file, a QMP socket, vmgenid, no
#    NIC (hot-added in clones); freeze --json records the QEMU version and
#    the resolved machine type; the RAM and state files are read-only;
#  - clone --instant of an ordinary template: 4; vm xml of an instant
#    clone: 4, naming 'vm-clone start'; template rm while clones exist: 4;
#  - an instant clone's QEMU: share=off, -incoming defer; it is restored;
#    the RAM and state files are byte-identical afterwards;
#  - kill -9 of an ephemeral instant clone's QEMU leaves nothing after
#    the next command;
#  - a copy of the store whose recorded machine type (or QEMU version)
#    differs: refused (4) with the reason, before any state is loaded;
#  - a changed RAM file: start refused (6), fsck reports it; a change
#    that keeps size, inode, mtime and mode: only fsck --verify finds it;
#  - template rm once the clones and the frozen VM are gone removes the
#    two files.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/instant/instant-lib.sh"

inst_store 128

expect_rc 2 vmc start tv --memory-dir "$MEMDIR"
expect_rc 4 vmc template freeze tv --name T
err_matches "not running freezable"
expect_rc 2 vmc template freeze tv

# the freezable command line
vmc start tv --freezable --memory-dir "$MEMDIR" --direct --accel tcg \
    --dry-run > dry.txt || fail "start --freezable --dry-run"
for w in "share=on" "mem-path=$MEMDIR/vmclone-" "memory-backend=vmc-ram" \
         "-qmp unix:$VMCLONE_HOME/run/instant/" "-device vmgenid" "-nic none" \
         "pcie-root-port" "opt/vmclone/id"; do
    grep -qF -- "$w" dry.txt || fail "no '$w' in: $(cat dry.txt)"
done

start_freezable tv tv
tvpid=$BG_PID
ok vmc template freeze tv --name T --json > freeze.json
wait "$tvpid" || fail "the freezable start exited $? after the freeze: $(cat tv.err)"
python3 - freeze.json <<'PY' || fail "freeze --json: $(cat freeze.json)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["template"] == "T" and d["vm"] == "tv", d
assert d["machine"].startswith("pc-q35-"), d
assert d["qemu_version"][0].isdigit() and d["state_bytes"] > 0, d
PY
if /usr/bin/python3 -c 'import jsonschema' 2> /dev/null; then
    /usr/bin/python3 - "$TESTS_DIR/../docs/schema" freeze.json <<'PY' ||
import glob, json, os, sys, jsonschema
schemas = [json.load(open(f)) for f in glob.glob(os.path.join(sys.argv[1], "*.json"))]
store = {s["$id"]: s for s in schemas}
schema = [s for s in schemas if s["$id"].endswith("/template-freeze.json")][0]
resolver = jsonschema.RefResolver.from_schema(schema, store=store)
jsonschema.Draft202012Validator(schema, resolver=resolver).validate(
    json.load(open(sys.argv[2])))
PY
        fail "freeze --json does not follow docs/schema/template-freeze.json"
fi
read -r ram state < <(frozen_files T)
[ -f "$ram" ] && [ -f "$state" ] || fail "frozen files missing: '$ram' '$state'"
case $ram in "$MEMDIR"/*) ;; *) fail "the RAM file $ram is not in --memory-dir" ;; esac
[ "$(stat -c %a "$ram")" = 444 ] && [ "$(stat -c %a "$state")" = 444 ] ||
    fail "frozen files are not read-only: $(stat -c '%a %n' "$ram" "$state")"
[ -z "$(ls -A "$VMCLONE_HOME/run/instant")" ] ||
    fail "the freezable run left $(ls -A "$VMCLONE_HOME/run/instant")"
ram_sum=$(sha "$ram")
state_sum=$(sha "$state")
ok vmc fsck -q

expect_rc 4 vmc clone tiny --instant --name x
err_matches "not an instant template"
ok vmc clone T --instant --name 'c%d' --count 2 -q
expect_rc 4 vmc vm xml c1
err_matches "instant clone.*vm-clone start c1"
expect_rc 4 vmc template rm T
vmc deps T > deps.txt 2>&1
grep -q c1 deps.txt && grep -q c2 deps.txt || fail "deps T: $(cat deps.txt)"

# an instant clone's command line, then a real restore
vmc start c1 --direct --accel tcg --dry-run > dry1.txt || fail "dry-run c1"
for w in "share=off" "mem-path=$ram" "-incoming defer" "pc-q35-"; do
    grep -qF -- "$w" dry1.txt || fail "no '$w' in: $(cat dry1.txt)"
done
start_bg c1 c1 --direct
wait_for c1.err "restored from instant template 'T'" 120 "$BG_PID"
stop_bg "$BG_PID"
[ "$(sha "$ram")" = "$ram_sum" ] && [ "$(sha "$state")" = "$state_sum" ] ||
    fail "a clone changed the template's RAM or state file"

# kill -9 of an ephemeral instant clone's QEMU
c2disk=$(vmc info c2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
c2sum=$(sha "$c2disk")
start_bg e c2 --direct --ephemeral
spid=$BG_PID
wait_for e.err "restored from instant template 'T'" 120 "$spid"
qpid=$(cat /proc/"$spid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . | head -1)
[ -n "$qpid" ] || fail "no QEMU under the ephemeral start"
kill -9 "$qpid"
wait "$spid" 2>/dev/null
ok vmc list -q > /dev/null
[ -z "$(ls -A "$VMCLONE_HOME/run/scratch" 2>/dev/null)" ] ||
    fail "kill -9 left $(ls -A "$VMCLONE_HOME/run/scratch")"
[ -z "$(ls -A "$VMCLONE_HOME/run/instant" 2>/dev/null)" ] ||
    fail "kill -9 left $(ls -A "$VMCLONE_HOME/run/instant")"
[ "$(sha "$c2disk")" = "$c2sum" ] || fail "an ephemeral run changed c2's disk"

# c1 was resumed above: its disk is its own now, so its next start boots
# it from its disk; c2 ran ephemeral only and is still to be resumed
vmc start c1 --direct --accel tcg --dry-run > dry1b.txt 2> dry1b.err ||
    fail "dry-run of the resumed c1: $(cat dry1b.err)"
grep -q -- "-incoming" dry1b.txt && fail "c1 would be resumed again: $(cat dry1b.txt)"

# a copy of the store whose recorded machine type, or QEMU, differs
cp -a "$VMCLONE_HOME" home2
sqlite3 home2/catalog.db "UPDATE instant_templates SET machine = 'pc-q35-6.2'"
VMCLONE_HOME=$T/home2 expect_rc 4 vmc start c2 --direct --accel tcg --serial m.log
err_matches "machine type pc-q35-6.2"
sqlite3 home2/catalog.db "UPDATE instant_templates SET machine = \
    (SELECT machine FROM instant_templates), qemu_version = '6.2.0 (other)'"
VMCLONE_HOME=$T/home2 expect_rc 4 vmc start c2 --direct --accel tcg --serial m.log
err_matches "frozen with QEMU 6.2.0"
rm -rf home2

# a RAM file changed by one byte after the freeze
chmod 644 "$ram"
mt=$(stat -c %y "$ram")
printf '\x5a' | dd of="$ram" bs=1 seek=12345 conv=notrunc 2> /dev/null
chmod 444 "$ram"
expect_rc 6 vmc start c2 --direct --accel tcg --serial r.log
err_matches "RAM file of instant template 'T' changed"
expect_rc 6 vmc fsck --verify
# the same change with the old mtime: the cheap check passes, the digest
# does not
touch -d "$mt" "$ram"
vmc fsck -q > /dev/null 2>&1 || fail "fsck without --verify: $(last_err)"
vmc fsck --verify > fsck.txt 2>&1 && fail "fsck --verify missed a changed RAM file"
grep -q "instant template 'T' RAM file.*SHA-256" fsck.txt || fail "fsck --verify: $(cat fsck.txt)"

ok vmc rm c1 c2 -q
# the frozen VM sits on T's disk (freeze.c): T goes after it
expect_rc 4 vmc template rm T
err_matches "dependent: vm 'tv'"
ok vmc rm tv -q
ok vmc template rm T -q
[ ! -e "$ram" ] && [ ! -e "$state" ] || fail "template rm left its frozen files"
echo "PASS: $TEST_NAME"
