#!/bin/bash
# request-id-match: a retry with the same --request-id returns the first
# call's VMs only when it repeats the call: same name, source, snapshot,
# type (linked/full), count and pool. Otherwise it is refused with exit 4
# (conflict) and a message naming the first call's VM, and nothing is
# made (issue 13, point 3: two Jenkins jobs with the same BUILD_ID).
. "$(dirname "$0")/../catalog/cat-lib.sh"

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
ok vmc template import U t.qcow2 -q
ok vmc pool add p2 "$T/p2" -q
ok vmc clone T --name base -q
ok vmc snapshot create base s1 -q
ok vmc snapshot create base s2 -q

# mismatch ID CMD...: refused with 4, naming the first VM (FIRST)
mismatch() {
    local first=$1
    shift
    local before
    before=$(sql "SELECT count(*) FROM vms")
    expect_rc 4 vmc "$@"
    err_matches "request id .*'$first'"
    [ "$(sql "SELECT count(*) FROM vms")" = "$before" ] || fail "'$*' made a VM"
}

# the same call again: the first call's VM, existing
ok vmc clone T --name j1 --linked --request-id 7 -q
vmc clone T --name j1 --linked --request-id 7 --json > same.json || fail "exact retry"
[ "$(jget same.json 'd["existing"]')" = True ] || fail "exact retry: $(cat same.json)"

# another name, source, type, pool: refused
mismatch j1 clone T --name j2 --linked --request-id 7
mismatch j1 clone U --name j1 --linked --request-id 7
mismatch j1 clone T --name j1 --full --request-id 7
mismatch j1 clone T --name j1 --request-id 7
mismatch j1 clone T --name j1 --linked --pool p2 --request-id 7

# snapshot: the same VM, another snapshot
ok vmc clone base --snapshot s1 --name k1 --request-id 8 -q
ok vmc clone base --snapshot s1 --name k1 --request-id 8 -q
mismatch k1 clone base --snapshot s2 --name k1 --request-id 8
mismatch k1 clone base --name k1 --full --request-id 8

# count, and the numbered names
ok vmc clone T --name 'n-%d' --count 2 --request-id 9 -q
ok vmc clone T --name 'n-%d' --count 2 --request-id 9 -q
mismatch n-1 clone T --name 'n-%d' --count 3 --request-id 9
err_matches "different number of VMs \(2,"
mismatch n-1 clone T --name 'm-%d' --count 2 --request-id 9

# an explicit pool repeated, and the default pool named
ok vmc clone T --name q1 --pool p2 --request-id 10 -q
ok vmc clone T --name q1 --pool p2 --request-id 10 -q
mismatch q1 clone T --name q1 --request-id 10
ok vmc clone T --name q2 --request-id 11 -q
ok vmc clone T --name q2 --pool primary --request-id 11 -q
