#!/bin/bash
# serve-vm: `vm-clone serve` of catalogued names, and `vm-clone start`
# with a stand-in qemu-system-x86_64 (no guest; the boot suite boots one).
#  - serve VM: every disk exported as VM/disk0, VM/disk1 (nbdinfo --list),
#    each the guest view of the VM's disk; writes land in the VM's file
#    (qemu-img check clean), never in the template; --export-name is the
#    prefix; --home works; a file named like the VM is served as the file
#  - rm of a VM that is being served is refused (its files stay), and
#    goes through once the server has stopped
#  - serve TEMPLATE: read-only with a message; writes refused
#  - an unknown name fails in one line and creates no store
#  - --listen :0 binds 127.0.0.1
#  - SIGTERM at once after start: exit 0 (or killed before anything was
#    made), never a socket or pid file left behind
#  - start: the qemu command line has the VM's CPUs, memory, MACs, disks
#    and -accel tcg; exit status is qemu's; --nbd gives qemu working
#    nbd+unix URIs, writes through them are in the file after start
#    returns, and the private socket directory is gone
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires qemu-io --version

export VMCLONE_HOME=$T/home
export TMPDIR=$T/tmp
unset XDG_RUNTIME_DIR
mkdir -p "$TMPDIR"
vmc init -q || fail "vm-clone init"

qemu-img create -q -f qcow2 a.qcow2 8M || fail "create a"
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' a.qcow2 > /dev/null || fail "write a"
qemu-img create -q -f raw b.raw 4M || fail "create b"
qemu-io -f raw -c 'write -P 0xa5 1M 512k' b.raw > /dev/null || fail "write b"
ok vmc template import base a.qcow2 b.raw --cpus 2 --memory 256 --nics 2 -q
ok vmc clone base --linked --name vm1 -q
vmc info vm1 --json > vm1.json || fail "info vm1"
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
d0=$(jq_ vm1.json 'd["disks"][0]["path"]')
d1=$(jq_ vm1.json 'd["disks"][1]["path"]')
macs=$(jq_ vm1.json '" ".join(n["mac"] for n in d["nics"])')
tsums=$(sha256sum "$VMCLONE_HOME"/secondary/*.qcow2 "$VMCLONE_HOME"/primary/copy-*.qcow2)

# ---- serve VM
serve v vm1
grep -qx "nbd+unix:///vm1/disk0?socket=$T/v.sock" "$T/v.out" || fail "URIs: $(cat "$T/v.out")"
grep -qx "nbd+unix:///vm1/disk1?socket=$T/v.sock" "$T/v.out" || fail "URIs: $(cat "$T/v.out")"
nbdinfo --list "$(uri v)" > list.out || fail "nbdinfo --list"
[ "$(grep -c '^export=' list.out)" = 2 ] || fail "expected 2 exports: $(cat list.out)"
grep -q '^export="vm1/disk0":' list.out && grep -q '^export="vm1/disk1":' list.out ||
    fail "exports: $(grep '^export=' list.out)"
qemu-img compare -f raw -F qcow2 "$(uri v vm1/disk0)" a.qcow2 > /dev/null || fail "vm1/disk0 differs from a.qcow2"
qemu-img compare -f raw -F raw "$(uri v vm1/disk1)" b.raw > /dev/null || fail "vm1/disk1 differs from b.raw"
qemu-io -f raw -c 'write -P 0x77 2M 64k' "$(uri v vm1/disk1)" > /dev/null || fail "write vm1/disk1"
stop_server v
qemu_check "$d1"
qemu-io -f qcow2 -c 'read -P 0x77 2M 64k' -c 'read -P 0xa5 1M 512k' "$d1" > /dev/null ||
    fail "the write through vm1/disk1 is not in $d1"
[ "$(sha256sum "$VMCLONE_HOME"/secondary/*.qcow2 "$VMCLONE_HOME"/primary/copy-*.qcow2)" = "$tsums" ] ||
    fail "the template or its copy changed"

# --export-name is the prefix; --home instead of $VMCLONE_HOME; a single
# disk is also the default export
ok vmc clone base --linked --name vm2 -q
serve p --export-name box --home "$VMCLONE_HOME" vm1
grep -q '^nbd+unix:///box/disk1?' "$T/p.out" || fail "prefix: $(cat "$T/p.out")"
stop_server p
unset VMCLONE_HOME
serve h --home "$T/home" vm2
grep -qx "nbd+unix:///vm2/disk0?socket=$T/h.sock" "$T/h.out" || fail "--home: $(cat "$T/h.out")"
stop_server h
export VMCLONE_HOME=$T/home

# a file named like the VM is the file
cp a.qcow2 vm1
serve f vm1
grep -qx "nbd+unix:///vm1?socket=$T/f.sock" "$T/f.out" || fail "file target: $(cat "$T/f.out")"
stop_server f
rm vm1

# ---- rm while served: refused, the files stay; after the server: done
ok vmc clone base --linked --name busy -q
vmc info busy --json > busy.json || fail "info busy"
bd0=$(jq_ busy.json 'd["disks"][0]["path"]')
serve r busy
expect_fail vmc rm busy
err_matches "is running \(pid [0-9]+|in use"
[ -f "$bd0" ] || fail "a refused rm removed $bd0"
qemu-img compare -f raw -F qcow2 "$(uri r busy/disk0)" a.qcow2 > /dev/null ||
    fail "busy/disk0 broken after the refused rm"
stop_server r
ok vmc rm busy
[ ! -e "$bd0" ] || fail "rm left $bd0"

# ---- serve TEMPLATE: read-only
serve t base
grep -qi "template 'base' is sealed.*read-only" "$T/t.err" || fail "no read-only message: $(cat "$T/t.err")"
nbdinfo "$(uri t base/disk0)" | grep -q 'is_read_only: true' || fail "template export is writable"
qemu-io -f raw -c 'write 0 4k' "$(uri t base/disk0)" > /dev/null 2>&1 &&
    fail "qemu-io could write the template export"
nbdsh_ -u "$(uri t base/disk0)" -c 'h.pwrite(b"x" * 512, 0)' 2> nbdsh.err &&
    fail "a WRITE to the template export succeeded"
grep -qiE 'not permitted|read-only|EPERM' nbdsh.err || fail "WRITE to the template export: $(cat nbdsh.err)"
stop_server t
[ "$(sha256sum "$VMCLONE_HOME"/secondary/*.qcow2 "$VMCLONE_HOME"/primary/copy-*.qcow2)" = "$tsums" ] ||
    fail "the template or its copy changed"

# ---- unknown names
expect_fail vmc serve --socket "$T/u.sock" nosuch
err_matches "nosuch.*neither a file nor a VM or template"
[ "$(wc -l < "$T/vmc.err")" = 1 ] || fail "more than one line: $(cat "$T/vmc.err")"
expect_fail vmc serve --socket "$T/u.sock" --home "$T/nohome" nosuch
err_matches "no such file"
[ ! -e "$T/nohome" ] || fail "serve created a store for a mistyped file name"

# ---- --listen :0 is loopback
rm -f l.pid
"$VMCLONE" serve --listen :0 --pid-file l.pid a.qcow2 > l.out 2> l.err &
lpid=$!
cleanup_fn "kill $lpid"
for i in $(seq 100); do [ -s l.pid ] && break; sleep 0.05; done
grep -qE '^nbd://127\.0\.0\.1:[0-9]+/a\.qcow2$' l.out || fail "--listen :0: $(cat l.out l.err)"
port=$(sed -n 's|^nbd://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' l.out)
nbdinfo "nbd://127.0.0.1:$port/a.qcow2" > /dev/null || fail "nbdinfo over TCP"
kill -TERM $lpid; wait $lpid || fail "serve --listen exited $?"

# ---- SIGTERM right after start: clean exit, nothing left behind
sh_exe=$(readlink /proc/$$/exe)
for i in $(seq 30); do
    "$VMCLONE" serve --socket "$T/sig.sock" --pid-file "$T/sig.pid" vm1 > /dev/null 2> sig.err &
    p=$!
    # signal the program, not this shell forked to run it (it would run
    # our EXIT trap)
    for k in $(seq 2000); do
        [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$sh_exe" ] || break
    done
    [ $((i % 3)) = 0 ] || sleep "0.00$i"
    kill -TERM $p
    rc=0; wait $p || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 143 ] || fail "serve exited $rc after SIGTERM: $(cat sig.err)"
    [ ! -e "$T/sig.sock" ] || fail "SIGTERM (try $i, exit $rc) left the socket"
    [ ! -e "$T/sig.pid" ] || fail "SIGTERM (try $i, exit $rc) left the pid file"
done

# ---- start with a stand-in qemu
mkdir fakebin
cat > fakebin/qemu-system-x86_64 <<'EOF'
#!/bin/bash
printf '%s\n' "$@" > "$FAKE_ARGS"
for a in "$@"; do
    case $a in
    file=nbd+unix:*)
        u=${a#file=}; u=${u%%,format=*}
        qemu-io -f raw -c "write -P 0x3c 3M 64k" "$u" > /dev/null || exit 99
        ;;
    esac
done
exit "${FAKE_RC:-0}"
EOF
chmod +x fakebin/qemu-system-x86_64
export FAKE_ARGS=$T/args
PATH=$T/fakebin:$PATH FAKE_RC=3 vmc start vm1 --direct --accel tcg -- -no-reboot -S
rc=$?
[ "$rc" = 3 ] || fail "start exited $rc, qemu exited 3"
for want in -smp 2 -m 256 -accel tcg -no-reboot -S \
            "file=$d0,format=qcow2,if=virtio,cache=none,aio=threads" \
            "file=$d1,format=qcow2,if=virtio,cache=none,aio=threads"; do
    grep -qxF -- "$want" args || fail "qemu args lack '$want': $(tr '\n' ' ' < args)"
done
for m in $macs; do
    grep -q "^virtio-net-pci,netdev=net[01],mac=$m$" args || fail "qemu args lack MAC $m"
done
PATH=$T/fakebin:$PATH vmc start vm1 --direct --accel kvm > /dev/null || fail "start --accel"
[ "$(grep -c '^-accel$' args)" = 1 ] && grep -qx kvm args || fail "--accel kvm: $(tr '\n' ' ' < args)"

PATH=$T/fakebin:$PATH vmc start vm1 --nbd || fail "start --nbd exited $?"
grep -q "^file=nbd+unix:///vm1/disk0?socket=$TMPDIR/vm-clone-start\.[^/]*/nbd\.sock,format=raw" args ||
    fail "start --nbd: $(tr '\n' ' ' < args)"
[ -z "$(ls -A "$TMPDIR")" ] || fail "start --nbd left $(ls "$TMPDIR")"
qemu_check "$d0"
qemu_check "$d1"
qemu-io -f qcow2 -c 'read -P 0x3c 3M 64k' "$d0" > /dev/null || fail "NBD write not in $d0"
qemu-io -f qcow2 -c 'read -P 0x3c 3M 64k' -c 'read -P 0x77 2M 64k' "$d1" > /dev/null ||
    fail "NBD write not in $d1"

vmc start vm1 --nbd --dry-run > dry.out || fail "start --dry-run"
grep -q '^vm-clone serve ' dry.out && grep -q 'nbd+unix:///vm1/disk1' dry.out || fail "dry run: $(cat dry.out)"
[ -z "$(ls -A "$TMPDIR")" ] || fail "--dry-run made $(ls "$TMPDIR")"

expect_fail vmc start nosuch
err_matches "no VM named 'nosuch'"
expect_fail vmc start base
err_matches "no VM named 'base'"
[ "$(sha256sum "$VMCLONE_HOME"/secondary/*.qcow2 "$VMCLONE_HOME"/primary/copy-*.qcow2)" = "$tsums" ] ||
    fail "the template or its copy changed"
