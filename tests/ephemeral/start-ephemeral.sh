#!/bin/bash
# start-ephemeral: `vm-clone start VM --ephemeral` with a stand-in
# qemu-system-x86_64 (no guest; boot-ephemeral boots one).
#  - QEMU gets a qcow2 overlay in the store's run/scratch, over the VM's
#    disk, and inherits the scratch directory's lock; its writes land
#    there; after it exits the overlay is gone and the VM's disks are
#    byte-identical
#  - kill -9 of QEMU: start exits 137, the overlay is removed
#  - kill -9 of vm-clone start: QEMU dies with it; the overlay is left
#    (named) until the next command, which removes it
#  - --nbd --ephemeral: the serve child runs with --snapshot; QEMU's
#    writes through NBD do not reach the disk
#  - --dry-run names the overlay / the --snapshot server
. "$(dirname "$0")/../lib.sh"
requires qemu-io --version
requires flock --version

export VMCLONE_HOME=$T/home
export TMPDIR=$T/tmp
unset XDG_RUNTIME_DIR
mkdir -p "$TMPDIR"
vmc init -q || fail "vm-clone init"
qemu-img create -q -f qcow2 a.qcow2 8M || fail "create a"
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' a.qcow2 > /dev/null || fail "write a"
qemu-img create -q -f raw b.raw 4M || fail "create b"
ok vmc template import base a.qcow2 b.raw -q
ok vmc clone base --linked --name vm1 -q
vmc info vm1 --json > vm1.json || fail "info vm1"
d0=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["path"])' vm1.json)
d1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][1]["path"])' vm1.json)
sums() { sha256sum "$d0" "$d1" "$VMCLONE_HOME"/secondary/*.qcow2; }
before=$(sums)
scratch=$VMCLONE_HOME/run/scratch

mkdir fakebin
cat > fakebin/qemu-system-x86_64 <<'FAKE'
#!/bin/bash
# the stand-in: writes 0x3c to every disk, then does $FAKE_MODE
: > "$FAKE_OUT"
for a in "$@"; do
    case $a in
    file=nbd+unix:*)
        u=${a#file=}; u=${u%%,format=*}
        qemu-io -f raw -c "write -P 0x3c 3M 64k" "$u" > /dev/null || exit 99
        echo "nbd $u" >> "$FAKE_OUT" ;;
    file=*)
        f=${a#file=}; f=${f%%,format=*}
        qemu-io -f qcow2 -c "write -P 0x3c 3M 64k" -c "read -P 0x3c 3M 64k" "$f" > /dev/null || exit 99
        d=$(dirname "$f")
        flock -n "$d" true && echo "UNLOCKED $d" >> "$FAKE_OUT"
        echo "file $f" >> "$FAKE_OUT" ;;
    esac
done
case ${FAKE_MODE:-} in
killself) kill -KILL $$ ;;
killparent) kill -KILL $PPID; while :; do :; done ;;  # till the SIGTERM
esac
exit 0
FAKE
chmod +x fakebin/qemu-system-x86_64
export FAKE_OUT=$T/fake.out
# --direct: QEMU opens the files (a sealed chain goes through NBD by default)
fakestart() {
    case " $* " in *" --nbd "*) ;; *) set -- --direct "$@" ;; esac
    PATH=$T/fakebin:$PATH "$VMCLONE" start vm1 "$@" > start.out 2> start.err
}

# ---- a normal run
ok fakestart --ephemeral
[ "$(grep -c '^file ' fake.out)" = 2 ] || fail "QEMU did not get two disks: $(cat fake.out)"
grep -q "^file $scratch/ephemeral\.[^/]*/overlay-0\.qcow2$" fake.out || fail "disk 0 is no overlay: $(cat fake.out)"
grep -q UNLOCKED fake.out && fail "QEMU ran without the scratch directory's lock: $(cat fake.out)"
[ "$(sums)" = "$before" ] || fail "an ephemeral run changed the VM's disks"
[ -z "$(ls -A "$scratch")" ] || fail "the run left $(ls "$scratch")"

# ---- kill -9 of QEMU
rc=0; FAKE_MODE=killself fakestart --ephemeral || rc=$?
[ "$rc" = 137 ] || fail "start exited $rc after QEMU's kill -9, expected 137: $(cat start.err)"
[ -z "$(ls -A "$scratch")" ] || fail "QEMU's kill -9 left $(ls "$scratch")"
[ "$(sums)" = "$before" ] || fail "the VM's disks changed"

# ---- kill -9 of vm-clone: the overlays stay until the next command
rc=0; FAKE_MODE=killparent fakestart --ephemeral || rc=$?
[ "$rc" = 137 ] || fail "start exited $rc, expected 137 (killed)"
for i in $(seq 100); do
    pgrep -f "$T/fakebin/qemu-system-x86_64" > /dev/null || break
    sleep 0.1
done
left=$(find "$scratch" -name 'overlay-*.qcow2' | wc -l)
[ "$left" = 2 ] || fail "expected the 2 overlays of the killed run, found $left"
ok vmc list -q > /dev/null
[ -z "$(ls -A "$scratch")" ] || fail "the next command left $(ls -R "$scratch")"
[ "$(sums)" = "$before" ] || fail "the VM's disks changed"

# ---- through NBD
ok fakestart --ephemeral --nbd
grep -q '^nbd ' fake.out || fail "no NBD disk: $(cat fake.out)"
[ "$(sums)" = "$before" ] || fail "an ephemeral --nbd run changed the VM's disks"
[ -z "$(find "$scratch" "$TMPDIR" -type f)" ] || fail "left $(find "$scratch" "$TMPDIR" -type f)"

# ---- dry runs
ok vmc start vm1 --ephemeral --direct --dry-run > dry.out
grep -q "file=$scratch/ephemeral\.XXXXXX/overlay-1\.qcow2,format=qcow2" dry.out || fail "dry run: $(cat dry.out)"
ok vmc start vm1 --ephemeral --nbd --dry-run > dry.out
grep -q '^vm-clone serve .*--snapshot -- vm1$' dry.out || fail "dry run --nbd: $(cat dry.out)"
[ -z "$(ls -A "$scratch")" ] || fail "--dry-run made $(ls "$scratch")"

qemu_check "$d0"
qemu_check "$d1"
ok vmc fsck -q > /dev/null
