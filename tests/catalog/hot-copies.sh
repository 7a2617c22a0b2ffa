#!/bin/bash
# hot-copies: a hot template gets several base copies in a pool (issue 11,
# docs/design/scale-out.md). Without a limit (a directory pool's default)
# 10 parallel linked clones share one copy; with --max-clones-per-base 3,
# 10 parallel clones make exactly ceil(10/3) = 4 copies with at most 3
# clones each, read from the images themselves (qemu-img: each VM's
# backing file), and each clone reads as the template. A --count group
# goes to the copy with room and the fewest clones; a full pool makes one
# more copy, made from copy 0; deps/tree/template list name every copy;
# template rm refuses while clones exist; gc removes an extra copy nobody
# uses and keeps the others; a retired template goes with its last clone,
# every copy with it; fsck stays clean. Bad settings exit 2, a missing
# pool 3.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import T t.qcow2 -q

# backing_of FILE: the file FILE's qcow2 header names as its backing file
backing_of() {
    qemu-img info -U --output=json "$1" | python3 -c '
import json, os, sys
d = json.load(sys.stdin)
print(os.path.basename(d.get("full-backing-filename") or d["backing-filename"]))'
}

# clones_at POOLDIR PREFIX...: launch a linked clone per name into the
# pool, all at once; fail if any fails
parallel_clones() {
    local pool=$1 pids=() i n=0
    shift
    for i in "$@"; do
        "$VMCLONE" clone T --name "$i" --linked --pool "$pool" -q 2> "c-$i.err" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || n=$((n + 1))
    done
    [ "$n" = 0 ] || fail "$n of $# parallel clones failed: $(cat c-*.err)"
}

# ---- no limit (a directory pool's default): one copy for 10 clones
ok vmc pool set primary --max-clones-per-base default -q
vmc pool set primary --max-clones-per-base default > set.out || fail "pool set default"
grep -q "no limit" set.out || fail "dir default: $(cat set.out)"
parallel_clones primary $(seq -f 'p%g' 10)
[ "$(sql "SELECT count(*) FROM template_copies c JOIN pools p ON p.id = c.pool_id WHERE p.name = 'primary'")" = 1 ] ||
    fail "copies in primary without a limit: $(sql 'SELECT id, copy_no FROM template_copies')"
[ "$(ls "$H"/primary/copy-T-*.qcow2 | wc -l)" = 1 ] || fail "copy files in primary: $(ls "$H"/primary)"

# ---- a limit of 3: 10 parallel clones make exactly 4 copies
mkdir -p "$T/hot"
vmc pool add hot "$T/hot" --max-clones-per-base 3 --json > add.json || fail "pool add --max-clones-per-base"
vmc pool set hot --max-clones-per-base 3 --json > set.json || fail "pool set"
[ "$(jget set.json 'd["max_clones_per_base"]')" = 3 ] || fail "pool set --json: $(cat set.json)"
vmc pool list --json > pl.json || fail "pool list"
[ "$(jget pl.json '" ".join("%s=%d" % (p["name"], p["max_clones_per_base"]) for p in d)')" = "primary=0 secondary=0 hot=3" ] ||
    fail "pool list: $(cat pl.json)"
parallel_clones hot $(seq -f 'h%g' 10)

[ "$(sql "SELECT count(*) FROM template_copies c JOIN pools p ON p.id = c.pool_id WHERE p.name = 'hot' AND c.state = 'ready'")" = 4 ] ||
    fail "copies in hot: $(sql 'SELECT id, pool_id, copy_no, state FROM template_copies')"
[ "$(sql "SELECT min(copy_no) || ' ' || max(copy_no) FROM template_copies c JOIN pools p ON p.id = c.pool_id WHERE p.name = 'hot'")" = "0 3" ] ||
    fail "copy numbers: $(sql 'SELECT copy_no FROM template_copies')"
copies=$(ls "$T/hot" | grep '^copy-T-.*\.qcow2$' | sort)
[ "$(echo "$copies" | wc -l)" = 4 ] || fail "copy files in hot: $(ls "$T/hot")"
# the images decide: each VM's backing file is one of the 4 copies, none
# has more than 3, every copy is used, each VM reads as the template
for i in $(seq 10); do
    f=$(ls "$T"/hot/h$i-disk0-*.qcow2) || fail "no image of h$i"
    b=$(backing_of "$f")
    echo "$copies" | grep -qx "$b" || fail "h$i is backed by '$b', not a copy"
    echo "$b"
    qemu-img compare -q -U t.qcow2 "$f" || fail "h$i does not read as the template"
done > backings
sort backings | uniq -c | awk '$1 > 3 { bad = 1 } END { exit bad }' ||
    fail "a copy has more than 3 clones: $(sort backings | uniq -c)"
[ "$(sort -u backings | wc -l)" = 4 ] || fail "copies used: $(sort backings | uniq -c)"
for c in $copies; do
    qemu-img check -q -U "$T/hot/$c" || fail "qemu-img check $c"
done
# copies 1..3 were made from copy 0, in the pool
[ "$(sql "SELECT count(*) FROM template_copies c WHERE c.copy_no > 0 AND c.source_copy_id = (SELECT x.id FROM template_copies x WHERE x.pool_id = c.pool_id AND x.copy_no = 0)")" = 3 ] ||
    fail "sources: $(sql 'SELECT copy_no, source_copy_id FROM template_copies')"
# the catalog agrees with the images
[ "$(sort backings | uniq -c | awk '{ print $1 }' | sort | tr '\n' ' ')" = "1 3 3 3 " ] ||
    fail "clones per copy: $(sort backings | uniq -c)"

# ---- a group of 2 goes to the copy with room (the one with 1 clone)
ok vmc clone T --name 'g-%d' --count 2 --linked --pool hot -q
g1=$(backing_of "$(ls "$T"/hot/g-1-disk0-*.qcow2)")
g2=$(backing_of "$(ls "$T"/hot/g-2-disk0-*.qcow2)")
[ "$g1" = "$g2" ] || fail "the group was split: $g1 $g2"
[ "$(grep -cx "$g1" backings)" = 1 ] || fail "the group went to a copy with $(grep -cx "$g1" backings) clones"
[ "$(sql "SELECT count(*) FROM template_copies")" = 5 ] || fail "a copy was made for the group"
# every copy full: a clone killed while making copy 4 leaves nothing the
# next command does not roll back
rc=0
VMCLONE_CRASH_AT=copy.before-commit "$VMCLONE" clone T --name crashy --linked --pool hot -q 2>/dev/null || rc=$?
[ "$rc" = 99 ] || fail "the crash point was not reached (exit $rc)"
ok vmc list -q >/dev/null
[ "$(sql "SELECT count(*) FROM template_copies")" = 5 ] ||
    fail "after the crash: $(sql 'SELECT copy_no, state FROM template_copies')"
[ "$(ls "$T/hot" | grep -c '^copy-T-.*\.qcow2$')" = 4 ] || fail "the dead copy's file stayed: $(ls "$T/hot")"
# the next clone makes copy 4, and only it
ok vmc clone T --name h11 --linked --pool hot -q
[ "$(sql "SELECT max(copy_no) FROM template_copies")" = 4 ] || fail "no copy 4"
[ "$(ls "$T/hot" | grep -c '^copy-T-.*\.qcow2$')" = 5 ] || fail "copy files: $(ls "$T/hot")"

# ---- deps, tree, template list name every copy
vmc deps T > deps.out || fail "deps"
[ "$(grep -c '^vm ' deps.out)" = 23 ] || fail "deps T: $(cat deps.out)"
vmc tree T > tree.out || fail "tree"
for n in 1 2 3 4; do
    grep -q "copy T@hot#$n " tree.out || fail "tree has no T@hot#$n: $(cat tree.out)"
done
grep -q "(copy in pool hot)" tree.out || fail "tree: pool of a copy: $(cat tree.out)"
vmc template list --json > tl.json || fail "template list"
[ "$(jget tl.json '",".join(sorted(d[0]["copies_in"]))')" = "hot,hot#1,hot#2,hot#3,hot#4,primary" ] ||
    fail "template list copies: $(cat tl.json)"
fsck_clean

# ---- removal: refused while clones exist; gc takes an unused extra copy
expect_fail vmc template rm T
err_matches "dependents"
vmc gc -q || fail "gc"
[ "$(sql "SELECT count(*) FROM template_copies")" = 6 ] || fail "gc removed a used copy"
ok vmc rm h11 -q
c4=$(sql "SELECT v.file FROM volumes v JOIN template_copies c ON c.id = v.copy_id WHERE c.copy_no = 4")
[ -e "$T/hot/$c4" ] || fail "copy 4's file '$c4' missing"
vmc gc --json > gc.json || fail "gc"
[ "$(sql "SELECT count(*) FROM template_copies WHERE copy_no = 4")" = 0 ] || fail "gc kept the unused copy 4"
[ "$(sql "SELECT count(*) FROM template_copies")" = 5 ] || fail "gc removed other copies"
[ ! -e "$T/hot/$c4" ] || fail "gc left copy 4's file"
# no limit any more: the next clone uses the copy with the fewest clones
ok vmc pool set hot --max-clones-per-base 0 -q
ok vmc clone T --name h12 --linked --pool hot -q
[ "$(sql "SELECT count(*) FROM template_copies")" = 5 ] || fail "a copy made without a limit"
b=$(backing_of "$(ls "$T"/hot/h12-disk0-*.qcow2)")
# (all 4 copies have 3 clones now: the group filled the fourth)
[ "$b" = "$(sql "SELECT v.file FROM volumes v JOIN template_copies c ON c.id = v.copy_id JOIN pools p ON p.id = c.pool_id WHERE p.name = 'hot' AND c.copy_no = 0")" ] ||
    fail "h12 went to $b, not the lowest-numbered copy with the fewest clones"

# ---- bad input
expect_rc 2 vmc pool set hot --max-clones-per-base many
err_matches "max-clones-per-base"
expect_rc 2 vmc pool set hot --max-clones-per-base -3
expect_rc 2 vmc pool set hot
expect_rc 2 vmc pool add cold "$T/hot2" --max-clones-per-base x
expect_rc 3 vmc pool set nosuch --max-clones-per-base 3
expect_rc 1 vmc pool set secondary --max-clones-per-base 3
err_matches "secondary pool"
expect_rc 2 vmc pool add cold2 "$T/cold2" --kind secondary --max-clones-per-base 3
[ "$(sql "SELECT count(*) FROM pools WHERE name = 'cold2'")" = 0 ] || fail "pool cold2 added"

# ---- retired: no new clone, no new copy; it goes with its last clone,
# all its copies with it
ok vmc template retire T -q
expect_fail vmc clone T --name late --linked --pool hot
[ "$(sql "SELECT count(*) FROM template_copies")" = 5 ] || fail "retired template got a copy"
for v in $(vmc list --json | python3 -c 'import json,sys; print(" ".join(x["name"] for x in json.load(sys.stdin)))'); do
    ok vmc rm "$v" -q
done
vmc gc -q || fail "gc"
[ "$(sql "SELECT count(*) FROM templates")" = 0 ] || fail "the retired template stayed"
[ "$(sql "SELECT count(*) FROM template_copies")" = 0 ] || fail "copies left"
[ -z "$(ls "$T/hot")" ] || fail "files left in hot: $(ls "$T/hot")"
check_all_disks
fsck_clean
