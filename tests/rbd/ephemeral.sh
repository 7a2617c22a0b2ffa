#!/bin/bash
# tests/rbd/ephemeral.sh - throwaway overlays over rbd images: `serve
# --snapshot` and `start --nbd --ephemeral` of an rbd-backed VM write to a
# local qcow2 overlay in the store's scratch directory whose backing layer
# is the VM's image, read through librbd (src/ops/scratch.c):
#  - through the export: the guest's writes (whole and partial clusters,
#    zeroes) read back over the image's data; nbdcopy of the export is
#    the image with those writes
#  - while served the image is in use (rm refused, exit 5)
#  - after the server exits, and after kill -9 of it: the image's data
#    (rbd export), its snapshots and the pool's images are unchanged,
#    the store's run/scratch is empty, fsck is clean
#  - the template's image in the pool: --snapshot serves it writable,
#    the template stays as it was
#  - start --nbd --ephemeral (a stand-in qemu-system): the guest's write
#    is gone afterwards
. "$(dirname "$0")/rbd-lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdcopy --version

vmc pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    --kind primary -q || fail "pool add --type rbd: $(cat vmc.err)"
mk_template "$T/t.qcow2"
vmc template import tmpl "$T/t.qcow2" -q || fail "template import"
vmc clone tmpl --name vm1 --linked --pool ceph -q || fail "clone vm1: $(cat vmc.err)"
img1=$(vm_image vm1)
copy=$(rbd_ls | grep '^copy-tmpl')
qemu-io -f raw -c 'write -P 0x33 4M 64k' "$(qemu_rbd "$img1")" >/dev/null ||
    fail "qemu-io write into vm1"
vmc snapshot create vm1 s -q || fail "snapshot create: $(cat vmc.err)"

# rbd_state IMAGE: its data, its snapshots, the pool's images
rbd_state() {
    rbd -p "$CEPH_POOL" export --no-progress "$1" - 2>/dev/null | sha256sum
    rbd -p "$CEPH_POOL" snap ls "$1"
    rbd_ls
}
before=$(rbd_state "$img1")
tbefore=$(rbd_state "$copy")
qemu-img convert -f raw -O raw "$(qemu_rbd "$img1")" ref.raw || fail "qemu-img convert rbd:"
no_scratch() {
    [ -z "$(ls -A "$VMCLONE_HOME/run/scratch" 2>/dev/null)" ] ||
        fail "$1 left: $(ls -AR "$VMCLONE_HOME/run/scratch")"
}

# ---- serve --snapshot: the writes read back over the image's data
serve e --snapshot vm1
io='write -P 0x77 2M 64k
write -P 0x3c 4M 4k
write -P 0x41 8400k 512
write -z 0 64k'
qio() { local c args=(); while read -r c; do args+=(-c "$c"); done <<< "$1"; qemu-io -f raw "${args[@]}" "$2"; }
qio "$io" "$(uri e vm1/disk0)" > qio.out || fail "qemu-io over NBD: $(cat qio.out)"
cp ref.raw want.raw
qio "$io" want.raw > /dev/null || fail "qemu-io on want.raw"
nbdcopy "$(uri e vm1/disk0)" got.raw || fail "nbdcopy from the --snapshot export"
cmp got.raw want.raw || fail "the --snapshot export is not the image plus the writes"
# a partial cluster: the rest of it comes from the image (0xa5 at 8M+512k)
qemu-io -f raw -c 'read -P 0xa5 8M 16k' -c 'read -P 0x41 8400k 512' \
    -c 'read -P 0x33 4100k 60k' "$(uri e vm1/disk0)" > chk.out || fail "read back"
grep -q 'Pattern verification failed' chk.out && fail "read back: $(cat chk.out)"
expect_rc 5 vmc rm vm1
err_matches "in use"
server_alive e
stop_server e
[ "$(rbd_state "$img1")" = "$before" ] || fail "serve --snapshot changed the rbd image or the pool"
no_scratch "serve --snapshot"

# ---- kill -9 of the server
serve k --snapshot vm1
qemu-io -f raw -c 'write -P 0x99 0 1M' "$(uri k vm1/disk0)" > /dev/null || fail "write before kill"
kill -KILL "${_srv_pid[k]}"
wait "${_srv_pid[k]}" 2> /dev/null
[ "$(rbd_state "$img1")" = "$before" ] || fail "a killed serve --snapshot changed the rbd image"
no_scratch "kill -9 of serve --snapshot"
vmc fsck -q > /dev/null || fail "fsck after kill -9: $(cat vmc.err)"

# ---- the template's image: writable through the overlay only
cspec="rbd:$CEPH_POOL:conf=$CEPH_CONF/$copy"
serve c --snapshot "$cspec"
qemu-io -f raw -c 'write -P 0x55 0 64k' -c 'read -P 0x55 0 64k' "$(uri c)" > cw.out ||
    fail "write to the template through --snapshot: $(cat cw.out)"
stop_server c
[ "$(rbd_state "$copy")" = "$tbefore" ] || fail "serve --snapshot changed the template's image"
no_scratch "serve --snapshot of the template"

# ---- start --nbd --ephemeral with a stand-in qemu-system-x86_64
mkdir -p fakebin
cat > fakebin/qemu-system-x86_64 <<'SH'
#!/bin/bash
for a in "$@"; do
    case $a in
    file=nbd+unix:*)
        u=${a#file=}; u=${u%%,format=*}
        qemu-io -f raw -c "write -P 0x3c 5M 64k" -c "read -P 0x3c 5M 64k" "$u" > /dev/null || exit 99
        ;;
    esac
done
exit 0
SH
chmod +x fakebin/qemu-system-x86_64
# the stale watch of the killed server may hold the image for a while
for _ in $(seq 60); do
    rbd -p "$CEPH_POOL" status "$img1" | grep -q watcher= || break
    sleep 1
done
PATH=$T/fakebin:$PATH vmc start vm1 --nbd --ephemeral -q ||
    fail "start --nbd --ephemeral of an rbd VM exited $?"
[ "$(rbd_state "$img1")" = "$before" ] || fail "start --nbd --ephemeral changed the rbd image"
no_scratch "start --nbd --ephemeral"
fsck_clean
exit 0
