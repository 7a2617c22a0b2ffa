#!/bin/bash
# VM@SNAP names a snapshot wherever a command takes one (issue 13, point
# 8): clone, deps, snapshot create|revert|rm. The old forms (VM SNAP,
# --snapshot SNAP) keep working; naming the snapshot both ways, or a
# reference with an empty side, is a usage error (exit 2).
. "$(dirname "$0")/../catalog/cat-lib.sh"

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
ok vmc clone T --name vm --full -q

# snapshot create: both forms
ok vmc snapshot create vm@s1 -q
ok vmc snapshot create vm s2 -q
[ "$(sql "SELECT group_concat(name, ' ') FROM (SELECT name FROM snapshots ORDER BY name)")" = "s1 s2" ] ||
    fail "snapshots: $(sql 'SELECT name FROM snapshots')"

# clone VM@SNAP, and the old --snapshot form
ok vmc clone vm@s1 --name c1 -q
ok vmc clone vm --snapshot s1 --name c2 -q
vmc clone vm@s1 --name c3 --json > c3.json || fail "clone vm@s1 --json"
[ "$(jget c3.json 'd["type"]')" = linked ] || fail "type: $(cat c3.json)"
vmc deps vm@s1 > deps.out || fail "deps vm@s1"
for c in c1 c2 c3; do
    grep -qw "$c" deps.out || fail "$c not on vm@s1: $(cat deps.out)"
done

# both ways, or an empty side: exit 2, nothing made
expect_rc 2 vmc clone vm@s1 --snapshot s2 --name bad1 -q
expect_rc 2 vmc clone @s1 --name bad2 -q
expect_rc 2 vmc clone vm@ --name bad3 -q
expect_rc 2 vmc clone vm@s1@x --name bad4 -q
expect_rc 2 vmc snapshot rm vm@s2 s2 -q
expect_rc 2 vmc snapshot revert vm -q
[ "$(sql "SELECT count(*) FROM vms WHERE name LIKE 'bad%'")" = 0 ] || fail "a bad clone was made"

# a template has no snapshots: refused (not found), not a crash
vmc clone T@x --name bad5 -q 2> t.err && fail "clone T@x succeeded"
[ -s t.err ] || fail "clone T@x: no message"

# revert and rm: VM@SNAP and the old form
ok vmc snapshot revert vm@s2 -q
ok vmc snapshot rm vm@s2 -q
ok vmc snapshot create vm s3 -q
ok vmc snapshot rm vm s3 -q
[ "$(sql "SELECT group_concat(name, ' ') FROM snapshots")" = "s1" ] ||
    fail "snapshots left: $(sql 'SELECT name FROM snapshots')"
vmc snapshot rm vm@s1 -q 2> busy.err && fail "rm vm@s1 with clones succeeded"
grep -q . busy.err || fail "rm vm@s1: no message"
fsck_clean
