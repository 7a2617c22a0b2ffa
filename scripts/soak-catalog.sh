#!/bin/bash
# soak-catalog.sh - concurrent mixed catalog operations on one store (issue 9
# finding 1): WORKERS processes loop for SECONDS over clone (linked, full,
# from a snapshot), rm, snapshot create, template import/rm/retire, gc and
# flatten on a small shared name space, so that they collide. Refusals are
# expected; the run fails on
#   - any raw SQL error text in an error message (every conflict must be a
#     clean refusal in the catalog's words),
#   - any crash (death by signal) or sanitizer report,
#   - at the end: fsck inconsistencies, a journal row left running, or an
#     image that fails `qemu-img check`.
#
# usage: scripts/soak-catalog.sh [--seconds N] [--workers N] [--home DIR]
#                                [--vmclone PATH] [--keep]
# (defaults: 90 s, 4 workers, a scratch home removed afterwards, vm-clone
# from $VMCLONE or PATH). Needs qemu-img, qemu-io, sqlite3, python3.
set -u

seconds=${SOAK_SECONDS:-90}
workers=${SOAK_WORKERS:-4}
home=
keep=0
vmclone=${VMCLONE:-$(command -v vm-clone || true)}

while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --home) home=$2; shift 2 ;;
    --vmclone) vmclone=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak-catalog: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$vmclone" ] && [ -x "$vmclone" ] ||
    { echo "soak-catalog: no vm-clone binary (set VMCLONE or --vmclone)" >&2; exit 2; }
for tool in qemu-img qemu-io sqlite3 python3; do
    command -v "$tool" > /dev/null ||
        { echo "soak-catalog: $tool is needed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/soak-catalog.XXXXXX")
[ -n "$home" ] || home=$work/home
export VMCLONE_HOME=$home
cleanup() {
    if [ "$keep" = 1 ]; then
        echo "soak-catalog: kept $work (home $home)" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# Error text that is SQLite's, not ours.
RAW_SQL='constraint failed|sqlite|SQL logic|SQL error|database is locked|database table is locked|no such (table|column)|syntax error|statement: |cannot commit|cannot start a transaction'

"$vmclone" init -q 2> "$work/init.err" ||
    { echo "soak-catalog: init failed: $(cat "$work/init.err")" >&2; exit 1; }
qemu-img create -q -f qcow2 "$work/base.qcow2" 4M &&
    qemu-io -f qcow2 -c 'write -P 0x5a 0 512k' -c 'write -P 0xa5 2M 256k' \
        "$work/base.qcow2" > /dev/null ||
    { echo "soak-catalog: cannot make the base image" >&2; exit 1; }
for t in 0 1; do
    "$vmclone" template import "t$t" "$work/base.qcow2" -q
done

# worker ID: loop until the deadline, one random operation at a time;
# each line of $work/log.ID is "verb rc" and failures go to $work/bad.ID.
worker() {
    local id=$1 end=$2 n=0 rc vm vm2 t s op
    local err=$work/err.$id
    RANDOM=$((id * 7919 + $$))
    while [ "$(date +%s)" -lt "$end" ]; do
        n=$((n + 1))
        vm=v$((RANDOM % 12))
        vm2=v$((RANDOM % 12))
        t=t$((RANDOM % 4))
        s=s$((RANDOM % 3))
        case $((RANDOM % 40)) in
        [0-9]) op=(clone "$t" --name "$vm" -q) ;;
        1[0-2]) op=(clone "$vm2" --full --name "$vm" -q) ;;
        1[3-5]) op=(clone "$vm2" --snapshot "$s" --name "$vm" -q) ;;
        1[6-9]) op=(rm "$vm" -q) ;;
        2[0-5]) op=(snapshot create "$vm" "$s" -q) ;;
        2[6-7]) op=(snapshot rm "$vm" "$s" -q) ;;
        2[8-9]) op=(template import "$t" "$work/base.qcow2" -q) ;;
        3[0-2]) op=(template rm "$t" -q) ;;
        33) op=(template retire "$t" -q) ;;
        3[4-5]) op=(gc -q) ;;
        *) op=(flatten "$vm" -q) ;;
        esac
        rc=0
        "$vmclone" "${op[@]}" > /dev/null 2> "$err" || rc=$?
        echo "${op[0]} $rc" >> "$work/log.$id"
        [ "$rc" = 0 ] || sed "s/^/${op[0]}: /" "$err" >> "$work/refusals.$id"
        if [ "$rc" -ge 126 ]; then
            echo "CRASH (exit $rc): vm-clone ${op[*]}: $(cat "$err")" >> "$work/bad.$id"
        elif grep -qE 'Sanitizer|runtime error:' "$err"; then
            echo "SANITIZER: vm-clone ${op[*]}: $(head -3 "$err")" >> "$work/bad.$id"
        elif grep -qiE "$RAW_SQL" "$err"; then
            echo "RAW SQL ERROR: vm-clone ${op[*]}: $(cat "$err")" >> "$work/bad.$id"
        elif [ "$rc" != 0 ] && [ ! -s "$err" ]; then
            echo "SILENT FAILURE (exit $rc): vm-clone ${op[*]}" >> "$work/bad.$id"
        fi
    done
}

end=$(($(date +%s) + seconds))
pids=()
for i in $(seq 1 "$workers"); do
    worker "$i" "$end" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p"
done

status=0
cat "$work"/bad.* > "$work/bad" 2> /dev/null
if [ -s "$work/bad" ]; then
    echo "soak-catalog: $(wc -l < "$work/bad") bad results:" >&2
    sort "$work/bad" | head -40 >&2
    status=1
fi

# the end state: fsck clean, nothing running, every image checks
rc=0
"$vmclone" fsck --json > "$work/fsck.json" 2> "$work/fsck.err" || rc=$?
incons=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inconsistencies"])' \
         "$work/fsck.json" 2> /dev/null || echo "?")
if [ "$rc" != 0 ] || [ "$incons" != 0 ]; then
    echo "soak-catalog: fsck exited $rc with $incons inconsistencies:" >&2
    cat "$work/fsck.json" "$work/fsck.err" >&2
    status=1
fi
running=$(sqlite3 -batch -noheader "$home/catalog.db" \
          "SELECT count(*) FROM journal WHERE state = 'running'")
if [ "$running" != 0 ]; then
    echo "soak-catalog: $running journal rows left running" >&2
    status=1
fi
nimg=0
for f in "$home"/primary/*.qcow2 "$home"/secondary/*.qcow2; do
    [ -e "$f" ] || continue
    nimg=$((nimg + 1))
    out=$(qemu-img check -q -U "$f" 2>&1) ||
        { echo "soak-catalog: qemu-img check $f: $out" >&2; status=1; }
done

ops=$(cat "$work"/log.* 2> /dev/null | wc -l)
okn=$(cat "$work"/log.* 2> /dev/null | awk '$2 == 0' | wc -l)
echo "soak-catalog: $workers workers, ${seconds}s: $ops operations, $okn succeeded," \
     "$((ops - okn)) refused; $nimg images checked; $(sqlite3 -batch -noheader \
     "$home/catalog.db" "SELECT count(*) FROM vms") VMs at the end"
cat "$work"/log.* 2> /dev/null | awk '{ n[$1]++; if ($2 == 0) k[$1]++ }
    END { for (v in n) printf "  %-10s %5d run, %5d ok\n", v, n[v], k[v] }' | sort
echo "most frequent refusals:"
cat "$work"/refusals.* 2> /dev/null | sed -E "s/'[^']*'/'X'/g; s/[0-9]+/N/g" |
    sort | uniq -c | sort -rn | head -12
[ "$status" = 0 ] && echo "soak-catalog: PASS" || echo "soak-catalog: FAIL" >&2
exit "$status"
