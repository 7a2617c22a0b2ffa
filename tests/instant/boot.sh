#!/bin/bash
# boot-instant (suite boot): instant clones of a real guest (issue 16).
# The guest of tests/nbd/guest-lib.sh's instant_guest (Debian's generic
# kernel: vmgenid, qemu_fw_cfg) boots from a clone of a template with
# "start --freezable --wait-console TEMPLATE-READY" (which returns once the
# guest printed it, QEMU in the background), writes /mnt/tmpl.txt and is
# frozen as template IT. Then "clone IT --instant --count N --start
# --wait-console CLONE-DONE" makes $INSTANT_CLONES (default 5) instant
# clones and starts them at once (their disks served over NBD: the
# template's chain is sealed), returning once each printed CLONE-DONE; each:
#  - is restored (no boot) and answers on its serial console;
#  - reads the template's file, writes its own name to its disk and reads
#    it back after dropping the caches;
#  - sees its own fw_cfg id (its UUID) and name, and its own MAC (the NIC
#    hot-added after the restore: the catalog's MAC);
#  - prints 16 bytes of /dev/urandom: all differ (vmgenid reseeds);
# afterwards the template's disk layer, RAM and state files have the
# sha256 of freeze time, each clone's overlay checks clean and holds its
# own file, and template rm is refused while the clones exist.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/guest-lib.sh"
. "$TESTS_DIR/instant/instant-lib.sh"
requires qemu-img --version
requires debugfs -V
instant_guest

N=${INSTANT_CLONES:-5}
inst_store 256
append="console=ttyS0 quiet panic=-1 no_timer_check vmctemplate"
t0=$(date +%s.%N)
"$VMCLONE" start tv --freezable --memory-dir "$MEMDIR" --direct --accel tcg \
    --kernel "$IKERNEL" --initrd "$IINITRD" --append "$append" \
    --serial "$T/tv.log" --wait-console TEMPLATE-READY --wait-timeout 600 \
    < /dev/null > tv.out 2> tv.err || fail "start --freezable --wait-console exited $?: $(cat tv.err)"
tvpid=$(sed -n "s/.*'kill \([0-9]*\)'.*/\1/p" tv.out)
[ -n "$tvpid" ] || fail "no pid from start --wait-console: $(cat tv.out)"
cleanup_fn "kill $tvpid 2> /dev/null"
grep -q TEMPLATE-READY tv.log || fail "start returned before TEMPLATE-READY: $(cat tv.log)"
note "the template booted in $(echo "$(date +%s.%N) - $t0" | bc) s"
ok vmc template freeze tv --name IT
for _ in $(seq 1 600); do kill -0 "$tvpid" 2> /dev/null || break; sleep 0.1; done
kill -0 "$tvpid" 2> /dev/null && fail "the freezable run did not end after the freeze"
read -r ram state < <(frozen_files IT)
layer=$(vmc template info IT --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["disks"][0]["path"])') ||
    fail "template info IT"
sum_ram=$(sha "$ram")
sum_state=$(sha "$state")
sum_layer=$(sha "$layer")

t0=$(date +%s.%N)
rc=0
"$VMCLONE" clone IT --instant --name 'ic-%d' --count "$N" --start \
    --wait-console CLONE-DONE --wait-timeout 600 < /dev/null > ic.out 2> ic.err || rc=$?
pids=($(sed -n "s/.*'kill \([0-9]*\)'.*/\1/p" ic.out))
for p in "${pids[@]}"; do cleanup_fn "kill $p 2> /dev/null"; done
[ "$rc" = 0 ] || fail "clone --instant --start exited $rc: $(cat ic.out ic.err)"
[ "${#pids[@]}" = "$N" ] || fail "not $N clones in the background: $(cat ic.out)"
note "$N instant clones answered $(echo "$(date +%s.%N) - $t0" | bc) s after clone --start (load $(cut -d' ' -f1 /proc/loadavg))"
for i in $(seq 1 "$N"); do
    log=ic-$i.txt
    # the serial console (STORE/run/console), without its CRLF
    tr -d '\r' < "$VMCLONE_HOME/run/console/ic-$i.log" > "$log"
    grep -q "^CLONE-DONE: ic-$i" "$log" || fail "ic-$i: no CLONE-DONE when clone --start returned"
    json=$(vmc info "ic-$i" --json) || fail "info ic-$i"
    uuid=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
    mac=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["nics"][0]["mac"])')
    grep -q "^CLONE-ID: $uuid" "$log" || fail "ic-$i: fw_cfg id: $(grep CLONE-ID "$log"), want $uuid"
    grep -q "^CLONE-NAME: ic-$i\$" "$log" || fail "ic-$i: fw_cfg name: $(grep CLONE-NAME "$log")"
    grep -q "^CLONE-TMPL: written by the template before freeze" "$log" ||
        fail "ic-$i: the template's file: $(grep CLONE-TMPL "$log")"
    grep -q "^CLONE-WHO: written by ic-$i\$" "$log" || fail "ic-$i: own file: $(grep CLONE-WHO "$log")"
    grep -q "^CLONE-MAC: $mac" "$log" || fail "ic-$i: MAC $(grep CLONE-MAC "$log"), want $mac"
    grep -q "VM 'ic-$i' restored from instant template 'IT'" ic.err || fail "ic-$i was not restored: $(cat ic.err)"
done
rands=$(grep -h '^CLONE-RAND:' ic-*.txt | sort | uniq | wc -l)
[ "$rands" = "$N" ] || fail "the clones' /dev/urandom bytes are not all different: $(grep -h CLONE-RAND ic-*.txt)"
for p in "${pids[@]}"; do kill "$p"; done
for p in "${pids[@]}"; do
    for _ in $(seq 1 600); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
done

[ "$(sha "$ram")" = "$sum_ram" ] || fail "the template's RAM file changed"
[ "$(sha "$state")" = "$sum_state" ] || fail "the template's state file changed"
[ "$(sha "$layer")" = "$sum_layer" ] || fail "the template's disk layer changed"
for i in $(seq 1 "$N"); do
    disk=$(vmc info "ic-$i" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
    qemu_check "$disk"
    raw_of "$disk" "ic-$i.raw"
    # the guest had its ext4 mounted: replay the journal on the copy
    e2fsck -fy "ic-$i.raw" > /dev/null 2>&1
    [ "$(debugfs -R 'cat /who.txt' "ic-$i.raw" 2>/dev/null)" = "written by ic-$i" ] ||
        fail "ic-$i's disk does not hold its own file"
done
expect_rc 4 vmc template rm IT
ok vmc fsck --verify -q
echo "PASS: $TEST_NAME"
