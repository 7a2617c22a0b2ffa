#!/bin/bash
# freeze-layer (suite instant, plain and ASan): a freeze makes the
# instant template in place (issue 16, src/catalog/freeze.c), with a real
# QEMU under TCG and no guest kernel.
#  - the template's disk is the frozen VM's top layer itself (same path,
#    same inode), sealed and read-only, still on the template copy below
#    it; the store grows by far less than the 8 MiB the VM had written
#    (the old freeze copied the disk into a new template);
#  - the VM gets a new overlay on that layer and reads what it had;
#  - linked clones of the template are overlays of the layer (no copy);
#    into another pool: a flattened copy, sealed with the same root;
#    `template copy` into its own pool (its default, as for clone) makes
#    nothing;
#  - the template below (tiny) cannot be removed while the frozen one is
#    on it; retired, it goes with the last layer on it; gc leaves the
#    layer; fsck and fsck --verify are clean, and --verify finds a byte
#    changed in the layer;
#  - template rm/retire --flatten-dependents of the template below refuse
#    (4) before flattening anything (a template is never flattened into a
#    VM), dry run included; deps --json names the frozen template (kind
#    template, docs/schema/defs.json) and its source is the VM;
#  - the frozen template cannot go while the VM sits on it;
#  - a VM with snapshots is refused (4) before its QEMU is stopped;
#  - a crash before the freeze's commit: the next command gives the VM its
#    layer back (writable, unsealed, checked by a snapshot of it).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/instant/instant-lib.sh"
requires qemu-io --version

inst_store 64
# top VM: the path of VM's top disk
top() {
    sqlite3 "$VMCLONE_HOME/catalog.db" "SELECT o.path FROM volume_owners o \
        JOIN volumes v ON v.id = o.id JOIN vms m ON m.id = v.vm_id WHERE \
        m.name = '$1' AND v.top = 1"
}
backing_of() {
    qemu-img info --output=json -U "$1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin).get("full-backing-filename", ""))'
}
# freeze VM NAME [ARGS]: start VM freezable, then template freeze ARGS
freeze() {
    local vm=$1 name=$2
    shift 2
    start_freezable "$vm-$name" "$vm"
    vmc template freeze "$vm" --name "$name" "$@"
}

tvtop=$(top tv)
qemu-io -f qcow2 -c 'write -P 0x77 1M 8M' "$tvtop" > /dev/null || fail "qemu-io write"
ino=$(stat -c %i "$tvtop")
before=$(du -sk "$VMCLONE_HOME" | cut -f1)
freeze tv T --json > f.json || fail "freeze: $(last_err)"
wait "$BG_PID" || fail "the freezable start exited $?: $(cat tv-T.err)"
after=$(du -sk "$VMCLONE_HOME" | cut -f1)
layer=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["disk_layers"][0]) if len(d["disk_layers"]) == 1 else print("")' f.json)

# in place: the very file the VM ran on, sealed, read-only, on tiny's copy
[ "$layer" = "$tvtop" ] || fail "the template's disk '$layer' is not the VM's layer '$tvtop'"
[ "$(stat -c %i "$layer")" = "$ino" ] || fail "the layer was replaced (another inode)"
[ "$(stat -c %a "$layer")" = 444 ] || fail "the layer is not read-only: $(stat -c %a "$layer")"
[ -f "$layer.seal" ] || fail "the layer is not sealed"
[ $((after - before)) -lt 2048 ] ||
    fail "the freeze grew the store by $((after - before)) KiB: a copy of the disk?"
qemu_check "$layer"
case $(backing_of "$layer") in
    */copy-tiny-*) ;;
    *) fail "the layer's backing file is $(backing_of "$layer"), not tiny's copy" ;;
esac

# the VM: a new overlay on the layer, reading what it had written
newtop=$(top tv)
[ "$newtop" != "$tvtop" ] || fail "the VM kept the layer as its disk"
[ "$(backing_of "$newtop")" = "$layer" ] || fail "the VM's overlay is on $(backing_of "$newtop")"
qemu-io -f qcow2 -r -U -c 'read -P 0x77 1M 8M' "$newtop" | grep -q "read 8388608" ||
    fail "the VM does not read its data through the layer"

# clones: overlays of the layer, in its pool, with no copy
ok vmc clone T --instant --name c1 -q
[ "$(backing_of "$(top c1)")" = "$layer" ] || fail "c1 is on $(backing_of "$(top c1)")"
qemu-io -f qcow2 -r -U -c 'read -P 0x77 1M 8M' "$(top c1)" | grep -q "read 8388608" ||
    fail "c1 does not read the template's data"
vmc template copy T > tc.txt || fail "template copy T: $(last_err)"
grep -q "frozen in pool 'primary'.*in place" tc.txt || fail "template copy T: $(cat tc.txt)"
[ "$(sqlite3 "$VMCLONE_HOME/catalog.db" "SELECT count(*) FROM template_copies c \
    JOIN templates t ON t.id = c.template_id WHERE t.name = 'T'")" = 0 ] ||
    fail "the freeze (or template copy into its pool) made a template copy"
ok vmc pool add p2 "$T/p2" --kind primary -q
ok vmc clone T --pool p2 --name c2 -q
case $(backing_of "$(top c2)") in
    "$T"/p2/*) ;;
    *) fail "c2's base is $(backing_of "$(top c2)"), not a copy in p2" ;;
esac
qemu-io -f qcow2 -r -U -c 'read -P 0x77 1M 8M' "$(top c2)" | grep -q "read 8388608" ||
    fail "c2 does not read the template's data"
copy2=$(backing_of "$(top c2)")
[ -z "$(backing_of "$copy2")" ] || fail "the copy in p2 is not flat: on $(backing_of "$copy2")"
qemu_check "$copy2"

# what depends on what
vmc deps T > deps.txt || fail "deps T: $(last_err)"
for v in tv c1 c2; do
    grep -q "vm $v" deps.txt || fail "deps T does not name $v: $(cat deps.txt)"
done
expect_rc 4 vmc template rm tiny
err_matches "template 'T'.*goes with 'vm-clone template rm'"
# a template is never flattened into a VM: --flatten-dependents refuses
# before it flattens anything, and its dry run says so
expect_rc 4 vmc template rm tiny --flatten-dependents --dry-run
err_matches "template T \(frozen\) sits on template 'tiny'"
expect_rc 4 vmc template rm tiny --flatten-dependents
err_matches "template 'T' \(frozen\) sits on it"
[ "$(backing_of "$(top c2)")" = "$copy2" ] && [ -n "$(backing_of "$layer")" ] ||
    fail "a refused --flatten-dependents changed a disk"
vmc deps tiny --json > deps.json || fail "deps tiny --json: $(last_err)"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert {"kind": "template", "name": "T"} in d, d' deps.json ||
    fail "deps tiny --json does not name T: $(cat deps.json)"
vmc template info T --json > ti.json || fail "template info T: $(last_err)"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert "tv" in json.dumps(d.get("source", d.get("origin"))), d' ti.json ||
    fail "template info T --json: its source is not VM tv: $(cat ti.json)"
ok vmc template retire tiny -q
vmc template list > tl.txt || fail "template list: $(last_err)"
grep -q "^tiny " tl.txt || fail "retired tiny was freed while T is on it: $(cat tl.txt)"
ok vmc gc -q
[ -f "$layer" ] || fail "gc removed the frozen template's layer"
ok vmc fsck -q
ok vmc fsck --verify -q

# a byte changed in the layer: fsck --verify finds it
chmod 644 "$layer"
off=$(qemu-img map --output=json -U "$layer" |
      python3 -c 'import json, sys; print([m for m in json.load(sys.stdin) if m["data"] and m["depth"] == 0][0]["offset"])')
cp -p "$layer" layer.orig
printf '\x01' | dd of="$layer" bs=1 seek=$((off + 4096)) conv=notrunc 2> /dev/null
chmod 444 "$layer"
expect_rc 6 vmc fsck --verify
err_matches "template 'T'|$(basename "$layer")"
chmod 644 "$layer"
cp -p layer.orig "$layer"
chmod 444 "$layer"
ok vmc fsck --verify -q

# the frozen template stays while a VM sits on it
ok vmc rm c1 c2 -q
expect_rc 4 vmc template rm T
err_matches "template 'T' has 1 dependent: vm 'tv'.*flatten tv"
ok vmc rm tv -q
ok vmc template rm T -q
[ ! -e "$layer" ] || fail "template rm T left its layer"
vmc template list > tl.txt || fail "template list: $(last_err)"
grep -q "^tiny " tl.txt && fail "retired tiny stayed after the last layer on it went"

# a VM with snapshots is refused before its QEMU is stopped (4): its
# layers sit on them
ok vmc template import tiny2 root.raw --memory 64 --cpus 1 -q
ok vmc clone tiny2 --name ts -q
ok vmc snapshot create ts s1 -q
start_freezable ts ts
expect_rc 4 vmc template freeze ts --name TS
err_matches "VM 'ts' has snapshots \('s1'\)"
kill -0 "$BG_PID" 2> /dev/null || fail "the refused freeze stopped ts's QEMU"
stop_bg "$BG_PID"

# a crash before the commit: the VM gets its layer back
ok vmc clone tiny2 --name tw -q
twtop=$(top tw)
mode=$(stat -c %a "$twtop")
VMCLONE_CRASH_AT=freeze.before-commit freeze tw T2 -q
rc=$?
[ "$rc" = 99 ] || fail "the freeze did not stop at its crash point (exit $rc)"
wait "$BG_PID" || true
ok vmc list -q > /dev/null
[ "$(top tw)" = "$twtop" ] || fail "after the crash tw's disk is $(top tw), not $twtop"
[ "$(stat -c %a "$twtop")" = "$mode" ] || fail "tw's layer stayed mode $(stat -c %a "$twtop")"
[ ! -e "$twtop.seal" ] || fail "tw's layer stayed sealed"
qemu_check "$twtop"
vmc template list > tl.txt || fail "template list: $(last_err)"
grep -q "^T2 " tl.txt && fail "the crashed freeze left template T2"
ok vmc snapshot create tw s1 -q
ok vmc fsck -q
echo "PASS: $TEST_NAME"
