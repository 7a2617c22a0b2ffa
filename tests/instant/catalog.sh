#!/bin/bash
# catalog (suite instant, plain and ASan; on PostgreSQL too, through
# tests/catalog-pg/run.sh): the catalog's side of instant templates
# (issue 16), with real freezes of a QEMU under TCG and no guest kernel.
#  - deps T (and template list's count) names the instant clones, also
#    one whose disk was flattened;
#    template rm T refuses while one exists (4), and so does
#    rm --flatten-dependents (flattening does not detach an instant clone)
#  - tree T shows the RAM and state files under T (tree.json), du a row
#    of kind 'instant' per directory holding frozen files, with their
#    allocated bytes (du.json)
#  - vm define, vm qemu-cmd, start --freezable and vm set --cpus/--memory/
#    --nics of an instant clone: refused (4) with the reason and the way
#  - the last clone of a retired instant template removed: the template
#    goes with its RAM and state files; gc of a retired instant template
#    removes them too (the bug: gc left them) and counts their bytes;
#  - a frozen file replaced by another file (another inode) is not the
#    catalog's: the template goes, that file stays, and gc and fsck
#    report it as unknown;
#  - a crash in the middle of template rm: the next command rolls it
#    forward, files included.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/instant/instant-lib.sh"

# The store: SQLite, or PostgreSQL when VMC_TEST_PG holds a server's
# connection string (tests/catalog-pg/run.sh): a database of its own.
PG_CONN=
if [ -n "${VMC_TEST_PG:-}" ]; then
    requires psql --version
    db=t_instant_$$_$RANDOM
    psql "$VMC_TEST_PG dbname=postgres" -Atqc "CREATE DATABASE $db" > /dev/null ||
        fail "CREATE DATABASE $db"
    PG_CONN="$VMC_TEST_PG dbname=$db"
    ok vmc init -q --catalog "$PG_CONN"
else
    ok vmc init -q
fi
# isql QUERY: the catalog, on either backend
isql() {
    if [ -n "$PG_CONN" ]; then
        psql "$PG_CONN" -AtqX -v ON_ERROR_STOP=1 -F ' ' -c "$1"
    else
        sqlite3 -batch -noheader -separator ' ' "$VMCLONE_HOME/catalog.db" "$1"
    fi
}
files_of() {
    isql "SELECT i.ram_file, i.state_file FROM instant_templates i JOIN \
        templates t ON t.id = i.template_id WHERE t.name = '$1'"
}
mkdir -p rootfs
echo "hello from the base" > rootfs/hello.txt
mke2fs -q -t ext4 -d rootfs -F root.raw 32M || fail "mke2fs -d"
ok vmc template import tiny root.raw --memory 64 --cpus 1 -q
ok vmc clone tiny --name tv -q

# freeze NAME: start a new clone of tiny freezable, freeze it as instant
# template NAME, and remove that VM (its overlay on NAME's disk, which was
# its top layer: freeze.c), so that NAME has no dependents
freeze() {
    ok vmc clone tiny --name "v-$1" -q
    start_freezable "tv-$1" "v-$1"
    ok vmc template freeze "v-$1" --name "$1" -q
    wait "$BG_PID" || fail "the freezable start exited $?: $(cat "tv-$1.err")"
    ok vmc rm "v-$1" -q
}
freeze T1
freeze T2
freeze T3
read -r ram1 state1 < <(files_of T1)
read -r ram2 state2 < <(files_of T2)
read -r ram3 state3 < <(files_of T3)
for f in "$ram1" "$state1" "$ram2" "$state2" "$ram3" "$state3"; do
    [ -f "$f" ] || fail "frozen file '$f' missing"
done
ok vmc clone T1 --instant --name 'c%d' --count 2 -q

# tree and du know the frozen files
vmc tree T1 > tree.txt || fail "tree T1: $(last_err)"
grep -qF "ram $ram1" tree.txt && grep -qF "state $state1" tree.txt ||
    fail "tree T1 does not show the frozen files: $(cat tree.txt)"
vmc tree --json --bytes > tree.json || fail "tree --json: $(last_err)"
python3 - tree.json "$ram1" "$state1" <<'PY' || fail "tree --json: $(cat tree.json)"
import json, os, sys
d = json.load(open(sys.argv[1]))
def nodes(ns):
    for n in ns:
        yield n
        yield from nodes(n["children"])
# frozen in place: T1 sits on tiny's copy (freeze.c)
t = [n for n in nodes(d) if n["kind"] == "template" and n["name"] == "T1"][0]
tiny = [n for n in d if n["name"] == "tiny"][0]
assert t in [c for n in tiny["children"] for c in n["children"]], tiny
kids = {(n["kind"], n["name"]): n for n in t["children"]}
for kind, path in (("ram", sys.argv[2]), ("state", sys.argv[3])):
    n = kids[(kind, path)]
    assert n["virtual_size"] == os.stat(path).st_size, n
    assert n["disk_size"] == os.stat(path).st_blocks * 512, n
def names(ns):
    for n in ns:
        yield (n["kind"], n["name"])
        yield from names(n["children"])
assert {("vm", "c1"), ("vm", "c2")} <= set(names(t["children"])), t
PY
vmc du --json > du.json || fail "du --json: $(last_err)"
python3 - du.json "$ram1" "$state1" "$ram2" "$state2" "$ram3" "$state3" <<'PY' ||
import json, os, sys
d = json.load(open(sys.argv[1]))
rows = [r for r in d if r["kind"] == "instant"]
files = sys.argv[2:]
dirs = {os.path.dirname(f) for f in files}
assert {r["path"] for r in rows} == dirs, rows
for r in rows:
    mine = [f for f in files if os.path.dirname(f) == r["path"]]
    assert r["image_count"] == len(mine), (r, mine)
    assert r["virtual_size"] == sum(os.stat(f).st_size for f in mine), r
    assert r["allocated"] == sum(os.stat(f).st_blocks * 512 for f in mine), r
PY
    fail "du --json: $(cat du.json)"
vmc du > du.txt || fail "du: $(last_err)"
grep -qE "^instant +instant +3 .*/mem$" du.txt || fail "du: $(cat du.txt)"
if /usr/bin/python3 -c 'import jsonschema' 2> /dev/null; then
    for s in tree du; do
        /usr/bin/python3 - "$TESTS_DIR/../docs/schema" "$s" "$s.json" <<'PY' ||
import glob, json, os, sys, jsonschema
schemas = [json.load(open(f)) for f in glob.glob(os.path.join(sys.argv[1], "*.json"))]
store = {s["$id"]: s for s in schemas}
schema = [s for s in schemas if s["$id"].endswith("/%s.json" % sys.argv[2])][0]
resolver = jsonschema.RefResolver.from_schema(schema, store=store)
jsonschema.Draft202012Validator(schema, resolver=resolver).validate(
    json.load(open(sys.argv[3])))
PY
            fail "$s --json does not follow docs/schema/$s.json"
    done
fi

# what cannot work for an instant clone is refused with the way
expect_rc 4 vmc vm define c1
err_matches "instant clone of 'T1'.*vm-clone start c1"
expect_rc 4 vmc vm qemu-cmd c1
err_matches "instant clone of 'T1'.*vm-clone start c1 --dry-run"
expect_rc 4 vmc start c1 --freezable --dry-run
err_matches "cannot run freezable: it is an instant clone"
for o in "--cpus 2" "--memory 256" "--nics 2"; do
    # shellcheck disable=SC2086
    expect_rc 4 vmc vm set c1 $o
    err_matches "instant clone.*T1"
done
ok vmc vm set c1 --label role=ci
ok vmc vm qemu-cmd tv > /dev/null        # an ordinary VM still can

# an instant clone depends on T1 through its files, flattened or not
ok vmc flatten c1 -q
vmc deps T1 > deps.txt || fail "deps T1: $(last_err)"
grep -qx "vm c1" deps.txt && grep -qx "vm c2" deps.txt ||
    fail "deps T1 after flatten c1: $(cat deps.txt)"
ok vmc rm c2 -q
vmc deps T1 --json > deps.json || fail "deps --json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d == [{"kind": "vm", "name": "c1"}], d' deps.json ||
    fail "deps T1 --json: $(cat deps.json)"
vmc template list --json > tl.json || fail "template list --json"
python3 -c 'import json,sys; d={t["name"]: t for t in json.load(open(sys.argv[1]))}; assert d["T1"]["dependent_count"] == 1, d["T1"]' tl.json ||
    fail "template list: T1's dependents: $(cat tl.json)"
expect_rc 4 vmc template rm T1
err_matches "instant template 'T1' has 1 dependent: vm 'c1'.*vm-clone rm c1"
expect_rc 4 vmc template rm T1 --flatten-dependents
err_matches "cannot detach"
[ -f "$ram1" ] && [ -f "$state1" ] || fail "a refused rm removed T1's files"

# a retired instant template goes with its last clone, files and all
ok vmc template retire T1 -q
vmc gc --dry-run > gcd.txt 2>&1 || fail "gc --dry-run: $(cat gcd.txt)"
grep -q "would-remove T1:" gcd.txt && fail "gc --dry-run would remove T1 while c1 exists: $(cat gcd.txt)"
ok vmc gc -q
[ -f "$ram1" ] && [ -f "$state1" ] || fail "gc removed T1's files while c1 exists"
ok vmc rm c1 -q
[ -z "$(isql "SELECT name FROM templates WHERE name = 'T1'")" ] ||
    fail "T1 stayed after its last clone"
[ ! -e "$ram1" ] && [ ! -e "$state1" ] ||
    fail "rm of the last clone of retired T1 left $(ls "$ram1" "$state1" 2>/dev/null)"

# gc of a retired instant template (one a failed free left behind: the
# flag set without the delete); its state file replaced by another file
isql "UPDATE templates SET retired = 1 WHERE name = 'T2'" > /dev/null ||
    fail "retire T2 by SQL"
mv "$state2" state2.old            # kept: its inode is not reused
cp state2.old "$state2"             # same bytes, another file
vmc gc --dry-run > gcd.txt 2>&1 || fail "gc --dry-run: $(cat gcd.txt)"
grep -q "would-remove T2: retired template" gcd.txt ||
    fail "gc --dry-run: $(cat gcd.txt)"
vmc gc > gc.txt 2>&1 || fail "gc: $(cat gc.txt)"
grep -q "T2" gc.txt || fail "gc did not report T2: $(cat gc.txt)"
[ -z "$(isql "SELECT name FROM templates WHERE name = 'T2'")" ] ||
    fail "gc kept retired T2"
[ ! -e "$ram2" ] || fail "gc of retired instant template T2 left its RAM file $ram2"
[ -f "$state2" ] || fail "gc removed a file the catalog did not create ($state2)"
# that file, no longer recorded, is reported by gc and fsck, left in place
grep -F "$state2" gc.txt | grep -q "^unknown" || fail "gc did not report $state2: $(cat gc.txt)"
vmc fsck > fsck.txt 2>&1
grep -qF "$state2" fsck.txt || fail "fsck did not report $state2: $(cat fsck.txt)"
[ -f "$state2" ] || fail "fsck removed $state2"
rm -f "$state2"

# a crash in the middle of template rm: rolled forward, files included
expect_rc 99 env VMCLONE_CRASH_AT=delete.after-mark "$VMCLONE" template rm T3 -q
[ -f "$ram3" ] || fail "the crash point is after the files' unlink"
ok vmc list -q > /dev/null
[ -z "$(isql "SELECT name FROM templates WHERE name = 'T3'")" ] ||
    fail "recovery did not finish template rm T3"
[ ! -e "$ram3" ] && [ ! -e "$state3" ] ||
    fail "recovery of template rm T3 left $(ls "$ram3" "$state3" 2>/dev/null)"
[ -z "$(isql "SELECT template_id FROM instant_templates")" ] ||
    fail "instant_templates rows left"
ok vmc fsck -q
echo "PASS: $TEST_NAME"
