#!/bin/bash
# serve-snapshot: `vm-clone serve TARGET --snapshot` (like qemu-nbd -s).
#  - a file target (qcow2 and raw): writes through the export read back
#    while it runs; after the server exits the file is byte-identical and
#    no overlay is left anywhere under $TMPDIR
#  - a VM target: the same after kill -9 of the server (the overlay was
#    unlinked once the export held it open), and the store's run/scratch
#    holds no file
#  - a scratch directory of a dead run (its lock free) loses its overlays
#    at the next `serve --snapshot`; one whose lock is held, and a file
#    that is not ours, stay
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires qemu-io --version
requires flock --version

export VMCLONE_HOME=$T/home
export TMPDIR=$T/tmp
unset XDG_RUNTIME_DIR
mkdir -p "$TMPDIR"

qemu-img create -q -f qcow2 a.qcow2 8M || fail "create a"
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' a.qcow2 > /dev/null || fail "write a"
qemu-img create -q -f raw b.raw 4M || fail "create b"
asum=$(sha a.qcow2)
bsum=$(sha b.raw)

# ---- files: writes visible while served, gone afterwards
serve f --snapshot a.qcow2 b.raw
qemu-io -f raw -c 'write -P 0x77 2M 64k' "$(uri f a.qcow2)" > /dev/null || fail "write a through the export"
qemu-io -f raw -c 'write -P 0x66 0 64k' "$(uri f b.raw)" > /dev/null || fail "write b through the export"
qemu-io -f raw -c 'read -P 0x77 2M 64k' -c 'read -P 0x5a 0 1M' "$(uri f a.qcow2)" > /dev/null ||
    fail "the export does not read back its write over the file's data"
qemu-io -f raw -c 'read -P 0x66 0 64k' "$(uri f b.raw)" > /dev/null || fail "b's export lost its write"
[ -z "$(find "$TMPDIR" -type f)" ] || fail "overlays named while serving: $(find "$TMPDIR" -type f)"
stop_server f
[ "$(sha a.qcow2)" = "$asum" ] || fail "serve --snapshot changed a.qcow2"
[ "$(sha b.raw)" = "$bsum" ] || fail "serve --snapshot changed b.raw"
[ -z "$(find "$TMPDIR" -type f)" ] || fail "left behind: $(find "$TMPDIR" -type f)"

# --readonly wins: no overlay, writes refused
serve r --snapshot --readonly a.qcow2
qemu-io -f raw -c 'write 0 4k' "$(uri r)" > /dev/null 2>&1 && fail "--readonly --snapshot took a write"
stop_server r

# ---- a VM, kill -9 of the server
vmc init -q || fail "vm-clone init"
ok vmc template import base a.qcow2 -q
ok vmc clone base --linked --name vm1 -q
d0=$(vmc info vm1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
vsum=$(sha "$d0")
serve v --snapshot vm1
qemu-io -f raw -c 'write -P 0x3c 1M 1M' "$(uri v vm1/disk0)" > /dev/null || fail "write vm1/disk0"
qemu-io -f raw -c 'read -P 0x3c 1M 1M' "$(uri v vm1/disk0)" > /dev/null || fail "vm1/disk0 lost its write"
kill -KILL "${_srv_pid[v]}"
wait "${_srv_pid[v]}" 2> /dev/null
[ "$(sha "$d0")" = "$vsum" ] || fail "serve --snapshot changed the VM's disk"
[ -z "$(find "$VMCLONE_HOME/run" -type f -name '*.qcow2')" ] ||
    fail "kill -9 left overlays: $(find "$VMCLONE_HOME/run" -name '*.qcow2')"
ok vmc fsck -q > /dev/null
qemu_check "$d0"

# ---- leftovers of dead runs go at the next serve --snapshot
sd=$TMPDIR/vm-clone-scratch
mkdir -p "$sd/ephemeral.dead1" "$sd/ephemeral.live1"
qemu-img create -q -f qcow2 "$sd/ephemeral.dead1/overlay-0.qcow2" 1M
qemu-img create -q -f qcow2 "$sd/ephemeral.dead1/overlay-1.qcow2" 1M
mkdir -p "$sd/ephemeral.dead2"
qemu-img create -q -f qcow2 "$sd/ephemeral.dead2/overlay-0.qcow2" 1M
echo mine > "$sd/ephemeral.dead2/notes.txt"
qemu-img create -q -f qcow2 "$sd/ephemeral.live1/overlay-0.qcow2" 1M
exec 9< "$sd/ephemeral.live1"        # a live run: this shell holds its lock
flock -n 9 || fail "cannot lock $sd/ephemeral.live1"
serve s --snapshot a.qcow2
stop_server s
[ ! -e "$sd/ephemeral.dead1" ] || fail "a dead run's directory is left: $(ls "$sd/ephemeral.dead1")"
[ ! -e "$sd/ephemeral.dead2/overlay-0.qcow2" ] || fail "a dead run's overlay is left"
[ "$(cat "$sd/ephemeral.dead2/notes.txt")" = mine ] || fail "the sweep removed a file that is not an overlay"
[ -f "$sd/ephemeral.live1/overlay-0.qcow2" ] || fail "the sweep removed the overlay of a live run"
exec 9<&-
[ "$(sha a.qcow2)" = "$asum" ] || fail "a.qcow2 changed"
