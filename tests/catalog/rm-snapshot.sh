#!/bin/bash
# rm-snapshot: `rm` racing `snapshot create` leaks no orphan overlay, and
# fsck --remove-unknown quarantines the files our naming scheme made that
# the catalog does not know, never anything else (issue 9 finding 9).
#  1. snapshot create paused before its commit (its new overlays being
#     made): rm refuses cleanly; the snapshot then completes.
#  2. rm paused after marking the VM deleting: snapshot create refuses
#     ("being removed"); the rm then completes; no file is left behind.
#  3. orphans: a file named like a volume of this store (and its .seal) is
#     moved to POOL/.quarantine (or --quarantine DIR); a foreign file and a
#     file named with another store's id stay where they are.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
ok vmc template import t t.qcow2 -q
ok vmc clone t --name v -q

paused() {      # paused POINT CMD...: run CMD in the background, paused
    local point=$1
    shift
    rm -rf "$T/pause"
    mkdir -p "$T/pause"
    VMCLONE_PAUSE_AT=$point VMCLONE_PAUSE_DIR=$T/pause \
        "$VMCLONE" "$@" > bg.out 2> bg.err &
    bg=$!
    for _ in $(seq 1 1000); do
        kill -0 "$bg" 2>/dev/null || break
        [ -e "$T/pause/paused" ] && break
        sleep 0.01
    done
    [ -e "$T/pause/paused" ] || fail "'$*' never reached $point: $(cat bg.err)"
}
resume() {
    touch "$T/pause/go"
    bgrc=0
    wait "$bg" || bgrc=$?
}
refused() {     # refused PATTERN CMD...
    local pat=$1 rc=0
    shift
    "$VMCLONE" "$@" > out 2> err || rc=$?
    [ "$rc" != 0 ] || fail "'$*' succeeded during the race"
    [ "$rc" -lt 126 ] || fail "'$*' crashed ($rc)"
    grep -q "$pat" err || fail "'$*': no clean refusal: $(cat err)"
    grep -qiE 'constraint|sqlite|SQL' err && fail "'$*': raw SQL error: $(cat err)"
    return 0
}

# 1. snapshot first
paused snapshot.before-commit snapshot create v s1
refused "is being created by another operation" rm v
resume
[ "$bgrc" = 0 ] || fail "snapshot create failed after the refused rm: $(cat bg.err)"
[ "$(sql "SELECT count(*) FROM snapshots WHERE name = 's1' AND state = 'ready'")" = 1 ] ||
    fail "the snapshot is missing"
fsck_clean
[ "$(jget "$T/fsck.json" 'd["unknown_files"]')" = 0 ] || fail "unknown files: $(cat "$T/fsck.json")"

# 2. rm first
paused delete.after-mark rm v
refused "being removed" snapshot create v s2
resume
[ "$bgrc" = 0 ] || fail "rm failed: $(cat bg.err)"
[ "$(sql "SELECT count(*) FROM vms")" = 0 ] || fail "the VM is still there"
fsck_clean
[ "$(jget "$T/fsck.json" 'd["unknown_files"]')" = 0 ] ||
    fail "an orphan was left behind: $(cat "$T/fsck.json")"

# 3. orphans and strangers
sid=$(sql "SELECT value FROM config WHERE key = 'store-id'")
[ -n "$sid" ] || fail "no store id"
P=$H/primary
cp t.qcow2 "$P/v-disk0-$sid-999.qcow2"
echo seal > "$P/v-disk0-$sid-999.qcow2.seal"
cp t.qcow2 "$P/old-disk1-77.qcow2"
echo mine > "$P/notes.txt"
cp t.qcow2 "$P/x-disk0-deadbeef-5.qcow2"
cp t.qcow2 "$P/v-disk0-$sid-1.raw"
ok vmc fsck --json > before.json
[ "$(jget before.json 'd["unknown_files"]')" = 6 ] || fail "fsck: $(cat before.json)"
[ -e "$P/v-disk0-$sid-999.qcow2" ] || fail "plain fsck moved a file"
ok vmc fsck --remove-unknown --json > q.json
[ "$(jget q.json 'd["quarantined"]')" = 3 ] || fail "quarantined: $(cat q.json)"
for f in "v-disk0-$sid-999.qcow2" "v-disk0-$sid-999.qcow2.seal" old-disk1-77.qcow2; do
    [ ! -e "$P/$f" ] || fail "$f is still in the pool"
    [ -f "$P/.quarantine/$f" ] || fail "$f is not in the quarantine"
done
cmp -s t.qcow2 "$P/.quarantine/v-disk0-$sid-999.qcow2" || fail "the quarantined file changed"
for f in notes.txt "x-disk0-deadbeef-5.qcow2" "v-disk0-$sid-1.raw"; do
    [ -f "$P/$f" ] || fail "$f (not ours) was moved or removed"
done
# the quarantine is not scanned again; a second run moves nothing
ok vmc fsck --remove-unknown --json > q2.json
[ "$(jget q2.json 'd["quarantined"]')" = 0 ] || fail "second run: $(cat q2.json)"
[ "$(jget q2.json 'd["unknown_files"]')" = 3 ] || fail "second run: $(cat q2.json)"
# --quarantine DIR; a name already there is never replaced
cp t.qcow2 "$P/v-disk0-$sid-999.qcow2"
mkdir -p qdir
echo keep > "qdir/v-disk0-$sid-999.qcow2"
ok vmc fsck --remove-unknown --quarantine "$T/qdir" -q
[ "$(cat "qdir/v-disk0-$sid-999.qcow2")" = keep ] || fail "the quarantine replaced a file"
[ -f "qdir/v-disk0-$sid-999.qcow2.1" ] || fail "not moved to --quarantine DIR: $(ls qdir)"
exit 0
