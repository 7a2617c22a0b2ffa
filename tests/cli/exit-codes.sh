#!/bin/bash
# exit-codes: the management commands exit by kind of failure (issue 13,
# point 2; docs/cli-contract.md): 0 ok, 1 failure, 2 usage, 3 not found,
# 4 conflict (exists, has dependents, reused request id), 5 busy (a lock
# is held), 6 integrity (damaged template, missing disk). The img verbs
# keep qemu-img's codes.
. "$(dirname "$0")/../catalog/cat-lib.sh"

# rc_is N CMD...: CMD exits N with a message on stderr.
rc_is() {
    local want=$1
    shift
    expect_rc "$want" vmc "$@"
    [ "$want" = 0 ] || [ -s "$T/vmc.err" ] || fail "'$*' exited $want without a message"
}

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
ok vmc clone T --name a -q

# 2: usage
rc_is 2 list --no-such-option
rc_is 2 rm
rc_is 2 clone T

# 3: not found
rc_is 3 info nosuch
rc_is 3 rm nosuch
rc_is 3 clone nosuch --name b
rc_is 3 flatten nosuch
rc_is 3 deps nosuch
rc_is 3 pool rm nosuch
rc_is 3 snapshot list nosuch
rc_is 3 snapshot create nosuch s
rc_is 3 vm xml nosuch
rc_is 3 template info nosuch

# 4: conflict
rc_is 4 clone T --name a
rc_is 4 template import T t.qcow2
rc_is 4 template rm T
err_matches 'dependent'
ok vmc snapshot create a s1 -q
ok vmc clone a --snapshot s1 --name b -q
rc_is 4 rm a
rc_is 4 snapshot rm a s1
ok vmc clone T --name 'r-%d' --count 2 --request-id R -q
rc_is 4 clone T --name 'r-%d' --count 3 --request-id R

# 5: busy (a process holds the disk's lock)
disk=$(sql "SELECT p.path || '/' || v.file FROM volumes v JOIN pools p ON p.id = v.pool_id
            JOIN vms ON vms.id = v.vm_id WHERE vms.name = 'b' AND v.top = 1")
[ -e "$disk" ] || fail "no disk for b: '$disk'"
hold_open "$disk"
rc_is 5 rm b
rc_is 5 flatten b
hold_release

# 6: integrity (a missing disk; a damaged seal of the template's copy)
ok vmc clone T --name c -q
rm -f "$(sql "SELECT p.path || '/' || v.file FROM volumes v JOIN pools p ON p.id = v.pool_id
              JOIN vms ON vms.id = v.vm_id WHERE vms.name = 'c' AND v.top = 1")"
rc_is 6 flatten c
rc_is 6 clone c --name c2 --full
seal=$(ls "$H"/primary/copy-T-*.seal)
chmod u+w "$seal"
printf 'XXXXXXXXXXXXXXXX' | dd of="$seal" bs=1 conv=notrunc status=none
rc_is 6 clone T --name e

# 0 and 1
rc_is 0 list
rc_is 1 config get no-such-key

# img verbs keep qemu-img's codes: a missing file is 1, not 3
rc_is 1 img info nosuch.qcow2
