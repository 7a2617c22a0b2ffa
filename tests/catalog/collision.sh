#!/bin/bash
# collision: a file that already sits at the name a catalog operation
# would give a new volume is never removed or replaced (issue 9 finding 2).
# The operation refuses before it stages anything ("already exists and is
# not in the catalog"), and the planted file and its .seal are left as
# they were. Covered: a template's first copy in a pool, a linked clone, a
# full clone, a template import. New names carry the store id, and a pool
# directory is marked as one store's: a second store cannot add it.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import t t.qcow2 -q

# next_name LABEL: the file name the next volume of LABEL (disk 0) gets
next_name() {
    local sid id
    sid=$(sql "SELECT value FROM config WHERE key = 'store-id'")
    id=$(( $(sql "SELECT seq FROM sqlite_sequence WHERE name = 'volumes'") + 1 ))
    echo "$1-disk0-${sid:+$sid-}$id.qcow2"
}
# plant DIR/FILE: a file that is not ours, with a seal sidecar
plant() {
    echo "precious $2" > "$1/$2"
    echo "precious seal $2" > "$1/$2.seal"
    planted="$1/$2"
}
# intact: the planted file and its seal are as written; then take them away
intact() {
    local what=$1
    [ "$(cat "$planted" 2>/dev/null)" = "precious ${planted##*/}" ] ||
        fail "$what removed or replaced the file at $planted"
    [ "$(cat "$planted.seal" 2>/dev/null)" = "precious seal ${planted##*/}" ] ||
        fail "$what removed or replaced $planted.seal"
    rm -f "$planted" "$planted.seal"
}
# refused CMD...: exit 4 (conflict) with the clean message
refused() {
    local rc=0
    "$VMCLONE" "$@" > out 2> err || rc=$?
    [ "$rc" = 4 ] || fail "$* exited $rc, expected 4: $(cat err)"
    grep -q 'already exists and is not in the catalog' err ||
        fail "$* failed without the clean refusal: $(cat err)"
}

# 1. the first use of t in the primary pool copies it there
plant "$H/primary" "$(next_name copy-t)"
refused clone t --name a
intact "the template copy of a first clone"
# 2. a linked clone (the copy now exists)
ok vmc clone t --name a -q
plant "$H/primary" "$(next_name b)"
refused clone t --name b
intact "a linked clone"
# 3. a full clone
plant "$H/primary" "$(next_name c)"
refused clone t --name c --full
intact "a full clone"
# 4. a template import
plant "$H/secondary" "$(next_name tmpl-u)"
refused template import u t.qcow2
intact "a template import"
# after the refusals the store works and is consistent
ok vmc clone t --name b -q
ok vmc clone t --name c --full -q
ok vmc template import u t.qcow2 -q
fsck_clean
check_all_disks

# 5. names carry this store's id; the pools are marked as this store's
sid=$(sql "SELECT value FROM config WHERE key = 'store-id'")
[ -n "$sid" ] || fail "no store id in the config table"
for f in $(sql "SELECT file FROM volumes"); do
    case $f in *-"$sid"-*) ;; *) fail "volume file '$f' without the store id" ;; esac
done
[ "$(cat "$H/primary/.vmclone-pool")" = "$sid" ] || fail "primary pool not marked"

# 6. a second store refuses to add the first store's pool directory
VMCLONE_HOME=$T/home2 "$VMCLONE" init -q || fail "init of a second store"
rc=0
VMCLONE_HOME=$T/home2 "$VMCLONE" pool add shared "$H/primary" > out 2> err || rc=$?
[ "$rc" = 4 ] || fail "a second store added another store's pool (exit $rc, expected 4)"
grep -q 'is a pool of another store' err || fail "unclear refusal: $(cat err)"
VMCLONE_HOME=$T/home2 "$VMCLONE" list > /dev/null || fail "the second store"
fsck_clean
exit 0
