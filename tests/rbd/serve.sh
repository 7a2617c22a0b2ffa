#!/bin/bash
# tests/rbd/serve.sh - `vm-clone serve` of rbd-backed VMs and template
# images over NBD, through librbd inside the engine (vmc_rbd_image_open),
# on a throwaway Ceph cluster:
#  - serve -r of a linked clone: nbdcopy reads what qemu-img convert
#    reads over rbd:; nbdinfo --map agrees with the data layout (the
#    template's data and the clone's writes are data, every hole reads as
#    zeros, the untouched rest is a hole)
#  - served writable: writes, write-zeroes and trims by qemu-io over NBD
#    land in the clone; the template's copy in the pool and its file stay
#  - while served: a second server and a foreign writer (qemu-io over
#    rbd:) are refused, and so is rm (exit 5, "in use"); after it, rm works
#  - the template's image in the pool: refused writable; read-only it
#    serves the template and refuses WRITE
#  - -f qcow2 is refused on rbd with a clear message (--snapshot:
#    tests/rbd/ephemeral.sh)
#  - start --nbd of an rbd VM (a stand-in qemu-system): the URIs work and
#    the guest's writes are in the image afterwards
. "$(dirname "$0")/rbd-lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdcopy --version

vmc pool add ceph --type rbd --rbd-pool "$CEPH_POOL" --conf "$CEPH_CONF" \
    --kind primary -q || fail "pool add --type rbd: $(cat vmc.err)"
mk_template "$T/t.qcow2"
tsum=$(sha256sum < "$T/t.qcow2")
vmc template import tmpl "$T/t.qcow2" -q || fail "template import"
vmc clone tmpl --name vm1 --linked --pool ceph -q || fail "clone vm1: $(cat vmc.err)"
img1=$(vm_image vm1)
copy=$(rbd_ls | grep '^copy-tmpl')
tfile=$(sql "SELECT o.path FROM volumes v JOIN volume_owners o ON o.id = v.id WHERE v.template_id IS NOT NULL")
tfsum=$(sha256sum < "$tfile")
# the clone's own data, besides the template's (0x5a 0-1M, 0xa5 8M+512k)
qemu-io -f raw -c 'write -P 0x33 4M 64k' "$(qemu_rbd "$img1")" >/dev/null ||
    fail "qemu-io write into vm1"

# ---- read-only: nbdcopy == qemu-img convert over rbd:
serve r -r vm1
t0=$(date +%s%N)
nbdcopy "$(uri r vm1/disk0)" out.raw || fail "nbdcopy from the rbd export"
note "nbdcopy of a 16 MiB rbd clone: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
qemu-img convert -f raw -O raw "$(qemu_rbd "$img1")" ref.raw || fail "qemu-img convert rbd:"
cmp out.raw ref.raw || fail "nbdcopy and qemu-img convert over rbd: differ"

# nbdinfo --map: extents "offset length type description"
t0=$(date +%s%N)
nbdinfo --map "$(uri r vm1/disk0)" > map.txt || fail "nbdinfo --map"
note "nbdinfo --map: $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(wc -l < map.txt) extents"
# map_covers OFF LEN KIND: one extent of KIND ("data"/"hole") covers it
map_covers() {
    awk -v o="$1" -v l="$2" -v k="$3" '
        $1 <= o && o < $1 + $2 { found = ($4 ~ k) && (o + l <= $1 + $2) }
        END { exit !found }' map.txt
}
map_covers 0 1048576 data || fail "template data at 0 is not data: $(cat map.txt)"
map_covers 8388608 524288 data || fail "template data at 8M is not data: $(cat map.txt)"
map_covers 4194304 65536 data || fail "the clone's data at 4M is not data: $(cat map.txt)"
map_covers 12582912 4194304 hole || fail "the untouched tail is not a hole: $(cat map.txt)"
holes=0
while read -r off len _ desc; do
    case $desc in *hole*) ;; *) continue ;; esac
    grep -q zero <<< "$desc" || fail "a hole not marked zero: $off $len $desc"
    cmp -s -n "$len" <(tail -c +$((off + 1)) ref.raw) /dev/zero ||
        fail "the hole at $off (+$len) does not read as zeros"
    holes=$((holes + len))
done < map.txt
[ "$holes" -ge $((12 << 20)) ] || fail "only $holes bytes of holes: $(cat map.txt)"
stop_server r

# ---- writable: writes, zeroes and trims land in the clone
serve w vm1
qemu-io -f raw -c 'write -P 0xab 3M 64k' -c 'write -z 8M 64k' \
    -c 'discard 0 64k' -c 'write -P 0x11 13M 4k' "$(uri w vm1/disk0)" \
    > qio.out || fail "qemu-io over NBD: $(cat qio.out)"
nbdinfo --map "$(uri w vm1/disk0)" > map.txt || fail "nbdinfo --map (writable)"
map_covers 3145728 65536 data || fail "a write over NBD is not data: $(cat map.txt)"
map_covers 13631488 4096 data || fail "a write over NBD is not data: $(cat map.txt)"

# in use while served: a second server, a foreign writer, rm
expect_fail vmc serve --socket "$T/x.sock" vm1
err_matches "in use"
timeout 60 qemu-io -f raw -c 'write -P 0xee 0 4k' "$(qemu_rbd "$img1")" \
    > foreign.out 2>&1 && fail "a foreign writer wrote while vm1 is served"
expect_rc 5 vmc rm vm1
err_matches "in use"
rbd_ls | grep -qx "$img1" || fail "a refused rm removed $img1"
server_alive w
stop_server w

qemu-io -f raw -c 'read -P 0xab 3M 64k' -c 'read -P 0 8M 64k' \
    -c 'read -P 0xa5 8256k 64k' -c 'read -P 0 0 64k' -c 'read -P 0x5a 64k 64k' \
    -c 'read -P 0x33 4M 64k' -c 'read -P 0x11 13M 4k' \
    "$(qemu_rbd "$img1")" > check.out || fail "qemu-io read vm1 over rbd:"
grep -q 'Pattern verification failed' check.out &&
    fail "the NBD writes are not in vm1: $(grep -B1 failed check.out)"
qemu-img compare -q -f qcow2 -F raw "$T/t.qcow2" "$(qemu_rbd "$copy")" ||
    fail "the template's copy in the pool changed"
[ "$(sha256sum < "$tfile")" = "$tfsum" ] || fail "the template's file changed"
[ "$(sha256sum < "$T/t.qcow2")" = "$tsum" ] || fail "t.qcow2 changed"

# ---- the template's image in the pool: read-only only
cspec="rbd:$CEPH_POOL:conf=$CEPH_CONF/$copy"
expect_fail vmc serve --socket "$T/y.sock" "$cspec"
err_matches "template.*read-only"
serve c -r "$cspec"
nbdinfo "$(uri c)" | grep -q 'is_read_only: true' || fail "the template export is writable"
qemu-img compare -q -f raw -F qcow2 "$(uri c)" "$T/t.qcow2" ||
    fail "the template export differs from the template"
nbdsh_ -u "$(uri c)" -c 'h.pwrite(b"x" * 512, 0)' 2> nbdsh.err &&
    fail "a WRITE to the template export succeeded"
grep -qiE 'not permitted|read-only|EPERM' nbdsh.err || fail "WRITE to the template export: $(cat nbdsh.err)"
stop_server c

# ---- an rbd image holds raw data: -f qcow2 is refused
expect_fail vmc serve -f qcow2 --socket "$T/f.sock" vm1
err_matches "served as raw"

# ---- start --nbd with a stand-in qemu-system-x86_64
mkdir -p fakebin
cat > fakebin/qemu-system-x86_64 <<'EOF'
#!/bin/bash
for a in "$@"; do
    case $a in
    file=nbd+unix:*)
        u=${a#file=}; u=${u%%,format=*}
        qemu-io -f raw -c "write -P 0x3c 5M 64k" "$u" > /dev/null || exit 99
        ;;
    esac
done
exit 0
EOF
chmod +x fakebin/qemu-system-x86_64
PATH=$T/fakebin:$PATH vmc start vm1 --nbd -q || fail "start --nbd of an rbd VM exited $?"
qemu-io -f raw -c 'read -P 0x3c 5M 64k' "$(qemu_rbd "$img1")" > check.out ||
    fail "qemu-io read after start"
grep -q 'Pattern verification failed' check.out && fail "start --nbd: the guest's write is not in vm1"

vmc rm vm1 || fail "rm vm1 after the servers: $(cat vmc.err)"
rbd_ls | grep -qx "$img1" && fail "rm vm1 left its image"
vmc fsck -q || fail "fsck: $(cat vmc.err)"
exit 0
