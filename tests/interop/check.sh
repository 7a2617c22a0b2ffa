#!/bin/bash
# check: `vm-clone img check` finds what `qemu-img check` finds on images
# broken by patching bytes, with the same exit codes (0 clean, 2 corrupt,
# 3 leaks only, 63 no checks for the format, 1 could not check), repairs
# with -r leaks / -r all so that qemu-img check is clean afterwards, and
# reports the same counts in --output=json.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

qrc() { local rc=0; qemu-img check -f qcow2 "$1" >/dev/null 2>&1 || rc=$?; echo $rc; }
jkeys() { python3 -c '
import json, sys
v = json.load(sys.stdin)
print(" ".join("%s=%s" % (k, v.get(k, 0)) for k in
      ("check-errors", "leaks", "corruptions", "total-clusters", "allocated-clusters", "image-end-offset")))'; }

# same_check IMG WANT_RC: qemu-img (the oracle) and we both exit WANT_RC
# and agree on the JSON counts
same_check() {
    local img=$1 want=$2 rc=0 q o
    [ "$(qrc "$img")" = "$want" ] || fail "oracle: qemu-img check $img exited $(qrc "$img"), test expects $want"
    q=$(qemu-img check -f qcow2 --output=json "$img" 2>/dev/null | jkeys)
    o=$(vmc img check -f qcow2 --output=json "$img") || rc=$?
    [ "$rc" = "$want" ] || fail "vm-clone img check $img exited $rc, qemu-img exits $want"
    o=$(printf '%s' "$o" | jkeys) || fail "check --output=json is not JSON"
    [ "$o" = "$q" ] || fail "check counts differ: ours '$o', qemu-img '$q'"
    rc=0; vmc img check -f qcow2 "$img" > human.txt || rc=$?
    [ "$rc" = "$want" ] || fail "human check exited $rc, expected $want"
}

mkimg() {
    rm -f "$1"
    qemu-img create -q -f qcow2 -o cluster_size=65536${2:+,$2} "$1" 4M
    qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 128k' -c 'write -z 2M 64k' "$1" >/dev/null
}

# clean images, made by qemu-img and by us
mkimg clean.qcow2
same_check clean.qcow2 0
grep -q 'No errors were found on the image.' human.txt || fail "clean check output: $(cat human.txt)"
ok vmc img create -f qcow2 ours.qcow2 4M
same_check ours.qcow2 0

# a leaked cluster (refcount 1, no reference) -> 3, then -r leaks -> 0
for rb in 1 16 64; do
    mkimg leak.qcow2 refcount_bits=$rb
    raw_of leak.qcow2 leak.raw
    qcow2_patch leak.qcow2 leak
    same_check leak.qcow2 3
    grep -q 'leaked clusters were found' human.txt || fail "leak not reported: $(cat human.txt)"
    ok vmc img check -r leaks -f qcow2 leak.qcow2 > /dev/null
    qemu_check leak.qcow2
    qemu_same leak.qcow2 leak.raw
done

# a referenced data cluster with refcount 0 -> 2; -r all repairs it
mkimg corr.qcow2
raw_of corr.qcow2 corr.raw
off=$(qemu-img map -f qcow2 --output=json corr.qcow2 | python3 -c 'import json,sys; print([e["offset"] for e in json.load(sys.stdin) if e.get("data")][0])')
qcow2_patch corr.qcow2 refcount=$((off / 65536)):0
cp corr.qcow2 corr2.qcow2
same_check corr.qcow2 2
grep -q 'errors were found on the image' human.txt || fail "corruption not reported: $(cat human.txt)"
# -r leaks does not fix a corruption: not 0, not 3 (qemu-img exits 1)
rc=0; vmc img check -r leaks -f qcow2 corr2.qcow2 > /dev/null || rc=$?
[ "$rc" = 1 ] || [ "$rc" = 2 ] || fail "check -r leaks on a corrupt image exited $rc"
ok vmc img check -r all -f qcow2 corr.qcow2 > /dev/null
qemu_check corr.qcow2
qemu_same corr.qcow2 corr.raw
same_check corr.qcow2 0

# a missing COPIED flag -> 2; -r all fixes it
mkimg copied.qcow2
qcow2_patch copied.qcow2 l2_clear_copied=0
same_check copied.qcow2 2
ok vmc img check -r all -f qcow2 copied.qcow2 > /dev/null
qemu_check copied.qcow2

# an L2 entry pointing past the end of the file -> 2
mkimg past.qcow2
qcow2_patch past.qcow2 l2_entry=40:8000000100000000
same_check past.qcow2 2

# a dirty lazy-refcounts image (crash) is repaired by -r all
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0x33 0 256k' -c abort dirty.qcow2 >/dev/null 2>&1
raw_of dirty.qcow2 dirty.raw
ok vmc img check -r all -f qcow2 dirty.qcow2 > /dev/null
qemu_check dirty.qcow2
qemu_same dirty.qcow2 dirty.raw

# formats without checks and images that cannot be checked
truncate -s 1M r.raw
expect_rc 63 vmc img check -f raw r.raw
err_matches 'does not support checks'
expect_rc 1 vmc img check -f qcow2 missing.qcow2
printf 'QFI\373' > trunc.qcow2
expect_rc 1 vmc img check -f qcow2 trunc.qcow2
note "ok"
