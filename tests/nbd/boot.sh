#!/bin/bash
# boot: a real Linux guest boots from linked clones (issue 5, "Boot a
# real guest" 1-3). The guest is built here from Debian packages:
#   kernel   linux-image-cloud-amd64 (apt-get download, dpkg-deb -x); its
#            virtio modules are insmod-ed by the init script in the order
#            virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
#            virtio_pci virtio_blk (ext4 is built in)
#   initrd   busybox-static + an init script that mounts /dev/vda, prints
#            a file of the template, writes /marker-N, syncs, powers off
#   disk     an ext4 image made with mke2fs -d: the template (qcow2)
# Kernel and initrd are cached in $BOOT_CACHE (the build dir) so repeated
# runs are fast. The test skips (77) when the packages cannot be fetched.
#  1. boot a linked clone through vm-clone serve (NBD, unix socket);
#  2. boot a linked clone opened by QEMU directly as qcow2;
#  3. boot ten linked clones of one template at once from one server.
# Afterwards every clone holds its own marker (and no other), the
# template's bytes are unchanged, qemu-img check and vm-clone img check
# are clean.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires qemu-system-x86_64 --version
requires mke2fs -V
requires debugfs -V
requires dpkg-deb --version
requires apt-get --version

cache=${BOOT_CACHE:-$T/cache}
mkdir -p "$cache"
KERNEL=$cache/vmlinuz
INITRD=$cache/initrd.gz

build_guest() {
    local w=$T/guestbuild kpkg m kver
    rm -rf "$w"
    mkdir -p "$w/dl" "$w/root"
    kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -1)
    [ -n "$kpkg" ] || kpkg=linux-image-cloud-amd64
    (cd "$w/dl" && apt-get download "$kpkg" busybox-static) > "$w/dl.log" 2>&1 ||
        skip "cannot download $kpkg and busybox-static: $(tail -1 "$w/dl.log")"
    for d in "$w"/dl/*.deb; do
        dpkg-deb -x "$d" "$w/x" || fail "dpkg-deb -x $d"
    done
    kver=$(ls "$w/x/lib/modules" | head -1)
    [ -n "$kver" ] || fail "no kernel modules in $kpkg"
    cp "$w/x/boot/vmlinuz-$kver" "$w/vmlinuz" || fail "no kernel in $kpkg"
    local r=$w/root
    mkdir -p "$r"/{bin,dev,proc,sys,mnt,lib/modules}
    cp "$w/x/bin/busybox" "$r/bin/busybox" || fail "no busybox in busybox-static"
    ln -s busybox "$r/bin/sh"
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
        f=$(find "$w/x/lib/modules/$kver" -name "$m.ko*" | head -1)
        [ -n "$f" ] || fail "module $m not in $kpkg"
        case $f in
        *.ko) cp "$f" "$r/lib/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" > "$r/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$r/lib/modules/$m.ko" ;;
        *) fail "unknown module compression: $f" ;;
        esac
    done
    cat > "$r/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    insmod /lib/modules/$m.ko || echo "GUEST: insmod $m failed"
done
id=$(sed -n 's/.*vmcid=\([0-9a-z]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if mount -t ext4 /dev/vda /mnt; then
    echo "GUEST-READ: $(cat /mnt/hello.txt)"
    echo "marker of guest $id" > /mnt/marker-$id.txt
    sync
    umount /mnt
    sync
    echo "BOOT-OK-$id"
else
    echo "GUEST: cannot mount /dev/vda"
fi
poweroff -f
INIT
    chmod 755 "$r/init"
    (cd "$r" && find . | "$r/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$w/initrd.gz" ||
        fail "cannot build the initramfs"
    mv "$w/vmlinuz" "$KERNEL.tmp" && mv "$KERNEL.tmp" "$KERNEL"
    mv "$w/initrd.gz" "$INITRD"
    rm -rf "$w"
}

[ -s "$KERNEL" ] && [ -s "$INITRD" ] || build_guest

# the template: an ext4 file system holding hello.txt
mkdir -p rootfs
echo "hello from the template" > rootfs/hello.txt
head -c 3M /dev/urandom > rootfs/blob.bin
mke2fs -q -t ext4 -d rootfs -F tmpl.raw 32M || fail "mke2fs -d"
qemu-img convert -f raw -O qcow2 tmpl.raw template.qcow2 || fail "template"
tsum=$(sha template.qcow2)

# boot_guest ID DRIVE-OPTS...: boot, wait for BOOT-OK-ID (timeout 120 s)
boot_guest() {
    local id=$1 rc=0
    shift
    timeout 120 qemu-system-x86_64 -accel tcg -m 192 -nographic -no-reboot \
        -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1 vmcid=$id" "$@" \
        > "guest-$id.log" 2>&1 < /dev/null || rc=$?
    grep -q "BOOT-OK-$id" "guest-$id.log" ||
        fail "guest $id did not boot (rc $rc): $(tail -5 "guest-$id.log")"
    grep -q "GUEST-READ: hello from the template" "guest-$id.log" ||
        fail "guest $id did not read the template's file"
}

# has_marker IMG ID: the clone's file system holds exactly marker-ID
check_clone() {
    local img=$1 id=$2 list
    qemu_check "$img"
    ok vmc img check "$img"
    qemu-img convert -f qcow2 -O raw "$img" "$img.raw" || fail "convert $img"
    [ "$(debugfs -R "cat /marker-$id.txt" "$img.raw" 2>/dev/null)" = "marker of guest $id" ] ||
        fail "$img does not hold marker-$id"
    list=$(debugfs -R 'ls -l /' "$img.raw" 2>/dev/null | grep -o 'marker-[0-9a-z]*\.txt' | tr '\n' ' ')
    [ "$list" = "marker-$id.txt " ] || fail "$img holds markers: $list"
    rm -f "$img.raw"
}

start=$(date +%s)
# ---- 1. through our NBD server
ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 c1.qcow2
serve s c1.qcow2
boot_guest 1 -drive "file=$(uri s c1.qcow2),format=raw,if=virtio"
stop_server s
check_clone c1.qcow2 1
note "guest 1 booted through vm-clone serve"

# ---- 2. QEMU opens the clone we created directly
ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 c2.qcow2
boot_guest 2 -drive "file=c2.qcow2,format=qcow2,if=virtio"
check_clone c2.qcow2 2
note "guest 2 booted from the qcow2 file"

# ---- 3. ten clones at once from one server
names=()
for i in $(seq 10 19); do
    ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 m$i.qcow2
    names+=(m$i.qcow2)
done
serve many "${names[@]}"
pids=()
for i in $(seq 10 19); do
    boot_guest $i -drive "file=$(uri many m$i.qcow2),format=raw,if=virtio" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "a guest of the ten failed"
done
stop_server many
for i in $(seq 10 19); do
    check_clone m$i.qcow2 $i
done
note "ten guests booted at once from one server"

[ "$(sha template.qcow2)" = "$tsum" ] || fail "the template changed"
note "boot tests took $(( $(date +%s) - start )) s"
