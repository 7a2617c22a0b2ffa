#!/bin/bash
# space: --flatten-dependents checks the free space of every filesystem
# that holds a dependent, not only the first one's. A VM in the default
# pool (plenty of space) comes first, one in a small tmpfs pool (too
# small to flatten it) second: template rm and retire with
# --flatten-dependents are refused with ENOSPC and change nothing. Needs
# root (mount); skipped otherwise.
. "$(dirname "$0")/cat-lib.sh"

mkdir small
mount -t tmpfs -o size=8m tmpfs "$T/small" 2>/dev/null || skip "cannot mount a tmpfs (needs root)"
cleanup_fn umount -l "$T/small"

qemu-img create -q -f qcow2 t.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x5a 0 5M' t.qcow2 >/dev/null || fail "qemu-io"
ok vmc template import T t.qcow2 -q
ok vmc pool add small "$T/small" --kind primary -q
ok vmc clone T --name big1 -q
ok vmc clone T --name s1 --pool small -q
[ "$(sql "SELECT count(*) FROM template_copies")" = 2 ] || fail "no copy in the small pool"

vmtype() {
    vmc info "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])'
}

expect_fail vmc template rm T --flatten-dependents
err_matches "needs [0-9]+ bytes in '$T/small'"
[ "$(vmtype big1)" = linked ] || fail "big1 flattened although the small pool lacked the space"
[ "$(vmtype s1)" = linked ] || fail "s1 changed"
[ "$(sql "SELECT count(*) FROM templates WHERE name='T'")" = 1 ] || fail "T removed"

expect_fail vmc template retire T --flatten-dependents
err_matches "needs [0-9]+ bytes in '$T/small'"
[ "$(vmtype big1)" = linked ] || fail "retire flattened big1 although the small pool lacked the space"
[ "$(sql "SELECT retired FROM templates WHERE name='T'")" = 0 ] || fail "refused retire retired T"

# with the small pool's VM gone, the rest fits
ok vmc rm s1 -q
ok vmc template rm T --flatten-dependents -q
[ "$(vmtype big1)" = full ] || fail "big1 not flattened"
qemu-img compare -q -U -f qcow2 -F qcow2 t.qcow2 \
    "$(vmc info big1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')" ||
    fail "big1 content"
check_all_disks
fsck_clean
