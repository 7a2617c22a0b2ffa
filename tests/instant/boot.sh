#!/bin/bash
# boot-instant (suite boot): instant clones of a real guest (issue 16).
# The guest of tests/nbd/guest-lib.sh's instant_guest (Debian's generic
# kernel: vmgenid, qemu_fw_cfg) boots from a clone of a template with
# start --freezable, writes /mnt/tmpl.txt and is frozen as template IT.
# Then $INSTANT_CLONES (default 5) instant clones start at once; each:
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
start_bg tv tv --freezable --memory-dir "$MEMDIR" --direct \
    --kernel "$IKERNEL" --initrd "$IINITRD" --append "$append"
tvpid=$BG_PID
wait_for tv.log TEMPLATE-READY 300 "$tvpid"
note "the template booted in $(echo "$(date +%s.%N) - $t0" | bc) s"
ok vmc template freeze tv --name IT
wait "$tvpid" || fail "the freezable start exited $?: $(cat tv.err)"
read -r ram state < <(frozen_files IT)
layer=$(vmc template info IT --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["disks"][0]["path"])') ||
    fail "template info IT"
sum_ram=$(sha "$ram")
sum_state=$(sha "$state")
sum_layer=$(sha "$layer")

ok vmc clone IT --instant --name 'ic-%d' --count "$N" -q
t0=$(date +%s.%N)
pids=()
for i in $(seq 1 "$N"); do
    start_bg "ic-$i" "ic-$i" --direct
    pids+=("$BG_PID")
done
for i in $(seq 1 "$N"); do
    wait_for "ic-$i.log" "CLONE-DONE: ic-$i" 600 "${pids[$((i - 1))]}"
done
note "$N instant clones answered $(echo "$(date +%s.%N) - $t0" | bc) s after their concurrent start (load $(cut -d' ' -f1 /proc/loadavg))"
for i in $(seq 1 "$N"); do
    log=ic-$i.txt
    tr -d '\r' < "ic-$i.log" > "$log"     # the serial console's CRLF
    json=$(vmc info "ic-$i" --json) || fail "info ic-$i"
    uuid=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
    mac=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["nics"][0]["mac"])')
    grep -q "^CLONE-ID: $uuid" "$log" || fail "ic-$i: fw_cfg id: $(grep CLONE-ID "$log"), want $uuid"
    grep -q "^CLONE-NAME: ic-$i\$" "$log" || fail "ic-$i: fw_cfg name: $(grep CLONE-NAME "$log")"
    grep -q "^CLONE-TMPL: written by the template before freeze" "$log" ||
        fail "ic-$i: the template's file: $(grep CLONE-TMPL "$log")"
    grep -q "^CLONE-WHO: written by ic-$i\$" "$log" || fail "ic-$i: own file: $(grep CLONE-WHO "$log")"
    grep -q "^CLONE-MAC: $mac" "$log" || fail "ic-$i: MAC $(grep CLONE-MAC "$log"), want $mac"
    grep -q "restored from instant template 'IT'" "ic-$i.err" || fail "ic-$i was not restored: $(cat "ic-$i.err")"
done
rands=$(grep -h '^CLONE-RAND:' ic-*.txt | sort | uniq | wc -l)
[ "$rands" = "$N" ] || fail "the clones' /dev/urandom bytes are not all different: $(grep -h CLONE-RAND ic-*.txt)"
for p in "${pids[@]}"; do stop_bg "$p"; done

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
