#!/bin/bash
# detach (suite instant, plain and ASan): "start --detach", "start
# --wait-console TEXT" and "clone --instant --start" (issue 16) with a
# real QEMU under TCG and no guest kernel (the BIOS finds nothing to boot
# and writes nothing on the serial console, so the test writes TEXT into
# the console file itself, in two pieces, as a guest would):
#  - usage: --wait-timeout without --wait-console, an empty TEXT,
#    clone --wait-console without --start: 2;
#  - --wait-console returns 0 once TEXT (split over two writes) is in the
#    console file, not before; QEMU runs on under the printed pid; a kill
#    of that pid stops QEMU and leaves no run file;
#  - TEXT never seen: 124 after --wait-timeout, QEMU stopped, nothing left;
#  - QEMU exiting first: 125, with QEMU's own message;
#  - --detach --json (docs/schema/start-detach.json) with the default
#    console STORE/run/console/VM.log (rm of the VM removes it and the
#    log);
#  - an instant clone with --detach returns once restored; resumed once,
#    it is recorded so (vms.instant 2) and its next start boots it from
#    its disk, which is said (the template's memory no longer matches the
#    disk); a clone whose QEMU exits at once fails at once (not after the
#    QMP timeout) and may still be resumed, as after an ephemeral run;
#    clone --instant --count 2 --start starts both (two QEMUs with
#    -incoming defer and -vga none like the template, consoles in
#    run/console) and exits 0; a failing
#    start (the RAM file changed) gives its status (6) and the clones stay;
#    a clone of a template frozen with a VGA (before -vga none) keeps it.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/instant/instant-lib.sh"

inst_store 128
H=$VMCLONE_HOME

# qemu_of PID: the QEMU child of supervisor PID (not its NBD server)
qemu_of() {
    local c
    for c in $(children "$1"); do
        case $(cat /proc/"$c"/comm 2>/dev/null) in qemu-system*) echo "$c"; return ;; esac
    done
}
# gone PID: wait (10 s at most) until PID is gone
gone() {
    local i
    for i in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    fail "process $1 is still there"
}
# pid_of FILE: the supervisors' pids of a start's output lines in
# $spid (each stopped when the test ends, also on failure)
pid_of() {
    local p
    spid=
    for p in $(sed -n "s/.*'kill \([0-9]*\)'.*/\1/p" "$1"); do
        cleanup_fn "kill $p 2> /dev/null"
        spid=$p
    done
}

expect_rc 2 vmc start tv --wait-timeout 5
err_matches "wait-timeout goes with --wait-console"
expect_rc 2 vmc start tv --wait-console ''
expect_rc 2 vmc start tv --wait-console X --wait-timeout 0
expect_rc 2 vmc clone tiny --name x --wait-console X
err_matches "goes with --start"
# a refusal of the detached start: its status and one --json document
rc=0
"$VMCLONE" start nosuch --detach --json > nf.json 2> /dev/null || rc=$?
[ "$rc" = 3 ] || fail "start nosuch --detach exited $rc"
python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["error"]["code"] == "not_found", d' nf.json ||
    fail "start nosuch --detach --json: not one error document: $(cat nf.json)"

# --wait-console: TEXT written in two pieces into the console file
"$VMCLONE" start tv --direct --accel tcg --serial "$T/tv.log" \
    --wait-console HELLO-CONSOLE --wait-timeout 120 \
    < /dev/null > tv.out 2> tv.err &
wpid=$!
for _ in $(seq 1 300); do
    [ -n "$(ls "$H"/run/console/tv.err 2>/dev/null)" ] && [ -e tv.log ] && break
    sleep 0.1
done
sleep 1
printf 'noise\r\nHELLO-CON' >> tv.log
sleep 1
kill -0 "$wpid" 2>/dev/null || fail "start returned before the text was complete: $(cat tv.out tv.err)"
printf 'SOLE\r\n' >> tv.log
for _ in $(seq 1 100); do
    kill -0 "$wpid" 2>/dev/null || break
    sleep 0.1
done
wait "$wpid" || fail "start --wait-console exited $?: $(cat tv.err)"
grep -q "runs in the background" tv.out || fail "no pid line: $(cat tv.out)"
pid_of tv.out
qpid=$(qemu_of "$spid")
[ -n "$qpid" ] && kill -0 "$qpid" || fail "no QEMU under the start ($spid) after it returned"
tr '\0' ' ' < /proc/"$qpid"/cmdline | grep -q -- "-serial file:$T/tv.log" ||
    fail "QEMU does not write the console to --serial: $(tr '\0' ' ' < /proc/"$qpid"/cmdline)"
kill "$spid"
gone "$qpid"
gone "$spid"

# TEXT never seen: 124, QEMU stopped
t0=$(date +%s)
expect_rc 124 vmc start tv --direct --accel tcg --wait-console NEVER-SEEN --wait-timeout 3
err_matches "did not appear on the serial console"
[ $(($(date +%s) - t0)) -lt 60 ] || fail "the timeout took $(($(date +%s) - t0)) s"
pgrep -f -- "file:$H/run/console/tv.log" > /dev/null &&
    fail "QEMU still runs after the timeout: $(pgrep -af -- "file:$H/run/console/tv.log")"
[ -e "$H/run/console/tv.log" ] || fail "no default console file"

# QEMU exiting first: 125 with QEMU's message
expect_rc 125 vmc start tv --direct --accel tcg --wait-console X -- -no-such-qemu-option
err_matches "QEMU of VM 'tv' exited before 'X'"
err_matches "no-such-qemu-option"

# --detach --json
vmc start tv --direct --accel tcg --detach --json > det.json 2> det.err ||
    fail "start --detach --json: $(cat det.err)"
python3 - det.json "$H" <<'PY' || fail "start --detach --json: $(cat det.json)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["vm"] == "tv" and d["pid"] > 0 and d["qemu_pid"] > 0, d
assert d["console"] == sys.argv[2] + "/run/console/tv.log", d
assert d["wait_console"] is None, d
PY
if /usr/bin/python3 -c 'import jsonschema' 2> /dev/null; then
    /usr/bin/python3 - "$TESTS_DIR/../docs/schema" det.json <<'PY' ||
import glob, json, os, sys, jsonschema
schemas = [json.load(open(f)) for f in glob.glob(os.path.join(sys.argv[1], "*.json"))]
store = {s["$id"]: s for s in schemas}
schema = [s for s in schemas if s["$id"].endswith("/start-detach.json")][0]
resolver = jsonschema.RefResolver.from_schema(schema, store=store)
jsonschema.Draft202012Validator(schema, resolver=resolver).validate(
    json.load(open(sys.argv[2])))
PY
        fail "start --detach --json does not follow docs/schema/start-detach.json"
fi
spid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' det.json)
cleanup_fn "kill $spid 2> /dev/null"
qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' det.json)
kill -0 "$qpid" || fail "QEMU $qpid does not run after --detach"
kill "$spid"
gone "$qpid"

# a freezable run, frozen; instant clones started by clone --start
start_freezable tv tv
tvpid=$BG_PID
ok vmc template freeze tv --name T -q
wait "$tvpid" || fail "the freezable start: $(cat tv.err)"

vmc clone T --instant --name one > /dev/null || fail "clone --instant"
vmc start one --direct --accel tcg --detach > one.out 2> one.err ||
    fail "start --detach of an instant clone: $(cat one.err)"
grep -q "restored from instant template 'T'" one.err || fail "not restored before the return: $(cat one.err)"
pid_of one.out
kill "$spid"
gone "$spid"
# resumed once, its disk is its own: the template's memory is never
# resumed over it again, the next start boots it from its disk
inst_of() { sqlite3 "$H/catalog.db" "SELECT instant FROM vms WHERE name = '$1'"; }
[ "$(inst_of one)" = 2 ] || fail "one was resumed but is recorded as instant=$(inst_of one)"
vmc start one --direct --accel tcg --dry-run > again.txt 2> again.err ||
    fail "dry-run of a resumed instant clone: $(cat again.err)"
grep -q -- "-incoming" again.txt && fail "a resumed instant clone is restored again: $(cat again.txt)"
grep -q "was resumed from its instant template before" again.err ||
    fail "the boot from disk is not said: $(cat again.err)"
# a clone's QEMU that dies at once: the restore gives up at once too,
# and the clone may still be resumed (its guest never ran)
vmc clone T --instant --name two > /dev/null || fail "clone --instant two"
t0=$(date +%s)
expect_rc 1 vmc start two --direct --accel tcg --serial dead.log -- -no-such-qemu-option
err_matches "QEMU exited before it listened on its QMP socket"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the restore waited $(($(date +%s) - t0)) s for a dead QEMU"
[ "$(inst_of two)" = 1 ] || fail "a failed restore left two recorded as instant=$(inst_of two)"
# an ephemeral run leaves the disk as it was: still to be resumed
vmc start two --direct --accel tcg --detach --ephemeral > two.out 2> two.err ||
    fail "start --ephemeral of an instant clone: $(cat two.err)"
grep -q "restored from instant template 'T'" two.err || fail "not restored: $(cat two.err)"
pid_of two.out
kill "$spid"
gone "$spid"
[ "$(inst_of two)" = 1 ] || fail "an ephemeral run recorded two as instant=$(inst_of two)"

rc=0
vmc clone T --instant --name 'ci-%d' --count 2 --start > cs.out 2> cs.err || rc=$?
pid_of cs.out
[ "$rc" = 0 ] || fail "clone --instant --start exited $rc: $(cat cs.out cs.err)"
[ "$(grep -c "runs in the background" cs.out)" = 2 ] || fail "clone --start: $(cat cs.out)"
[ "$(grep -c "restored from instant template 'T'" cs.err)" = 2 ] || fail "clone --start: $(cat cs.err)"
for i in 1 2; do
    [ -e "$H/run/console/ci-$i.log" ] || fail "no console file for ci-$i"
    grep "'ci-$i'" cs.out > "ci-$i.out"
    pid_of "ci-$i.out"
    qpid=$(qemu_of "$spid")
    tr '\0' ' ' < /proc/"$qpid"/cmdline | grep -q -- "-incoming defer" ||
        fail "ci-$i: not an instant restore"
    # no VGA (its 16 MiB of VRAM would be private in every clone), as
    # the template was frozen
    tr '\0' ' ' < /proc/"$qpid"/cmdline | grep -q -- "-vga none" ||
        fail "ci-$i: QEMU has a VGA: $(tr '\0' ' ' < /proc/"$qpid"/cmdline)"
    kill "$spid"
    gone "$spid"
done
[ -z "$(ls -A "$H/run/instant")" ] || fail "the clones left $(ls -A "$H/run/instant")"
# rm takes a VM's default console and log files with it
[ -e "$H/run/console/ci-1.err" ] || fail "no log file for ci-1"
ok vmc rm ci-1 -q
[ ! -e "$H/run/console/ci-1.log" ] && [ ! -e "$H/run/console/ci-1.err" ] ||
    fail "rm ci-1 left $(ls "$H"/run/console/ci-1.*)"
[ -e "$H/run/console/ci-2.log" ] || fail "rm ci-1 removed ci-2's console file"
# a template frozen before VGAs were left out: its clones keep one
cp -a "$H" home2
sqlite3 home2/catalog.db "UPDATE instant_templates SET devices = \
    replace(devices, 'vga,none' || char(10), '')"
VMCLONE_HOME=$T/home2 vmc start two --direct --accel tcg --dry-run > old.txt ||
    fail "dry-run of a clone of an older template"
grep -q -- "-vga none" old.txt && fail "a clone of a template frozen with a VGA has none"
rm -rf home2

# a start that fails: its status, the clones stay
read -r ram _ < <(frozen_files T)
chmod 644 "$ram"
printf '\x5a' | dd of="$ram" bs=1 seek=4321 conv=notrunc 2> /dev/null
chmod 444 "$ram"
expect_rc 6 vmc clone T --instant --name 'bad-%d' --count 2 --start
err_matches "the start of VM 'bad-1' failed .exit status 6."
ok vmc info bad-2 -q
echo "PASS: $TEST_NAME"
