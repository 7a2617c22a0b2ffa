#!/bin/bash
# concurrent: 50 `vm-clone --linked --name ci-$i` processes at once on a
# fresh store (the template imported, never used in the pool yet): all
# succeed, 50 distinct VMs, the template copied to the primary pool
# exactly once, the catalog passes integrity_check, every disk passes
# qemu-img check and reads the template's data.
. "$(dirname "$0")/cat-lib.sh"

N=${CAT_CONCURRENCY:-50}
mk_template t.qcow2
ok vmc template import ci t.qcow2 -q
ok vmc config set default-template ci

pids=()
for i in $(seq 1 "$N"); do
    "$VMCLONE" --linked --name "ci-$i" --json > "out-$i.json" 2> "err-$i" &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { failed=$((failed + 1)); echo "ci-$((i + 1)): $(cat "err-$((i + 1))")" >&2; }
done
[ "$failed" = 0 ] || fail "$failed of $N concurrent clones failed"
grep -lE 'Sanitizer|runtime error' err-* && fail "sanitizer report"

[ "$(sql "SELECT count(DISTINCT name) FROM vms WHERE state='ready'")" = "$N" ] || fail "not $N VMs"
[ "$(sql "SELECT count(*) FROM template_copies")" = 1 ] || fail "copy rows: $(sql 'SELECT * FROM template_copies')"
[ "$(sql "SELECT count(*) FROM journal WHERE op='copy'")" = 1 ] || fail "the template was copied more than once"
[ "$(ls "$H"/primary | grep -c '^copy-.*qcow2$')" = 1 ] || fail "copy files: $(ls "$H"/primary | grep copy-)"
made=0
for i in $(seq 1 "$N"); do
    [ "$(jget "out-$i.json" 'd["template_copy"]["made"]')" = True ] && made=$((made + 1))
    [ "$(jget "out-$i.json" 'd["mechanism"]')" = overlay ] || fail "ci-$i mechanism"
done
[ "$made" = 1 ] || fail "$made processes say they made the copy"
[ "$(sql 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
[ -z "$(sql 'PRAGMA foreign_key_check')" ] || fail "foreign_key_check"
[ "$(sql "SELECT count(DISTINCT path) FROM volume_owners WHERE kind='vm'")" = "$N" ] || fail "disk paths not distinct"
check_all_disks
for i in 1 $((N / 2)) "$N"; do
    p=$(vmc info "ci-$i" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
    qemu-img compare -q -U -f qcow2 -F qcow2 t.qcow2 "$p" || fail "ci-$i content"
done
fsck_clean
