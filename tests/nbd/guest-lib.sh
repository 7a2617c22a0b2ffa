# tests/nbd/guest-lib.sh - the tiny test guest of the boot tests; sourced
# after tests/lib.sh. Built once from Debian packages into $BOOT_CACHE:
#   kernel   linux-image-cloud-amd64 (apt-get download, dpkg-deb -x); its
#            virtio modules are insmod-ed by the init script in the order
#            virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
#            virtio_pci virtio_blk (ext4 is built in), then scsi_common
#            scsi_mod cdrom sr_mod virtio_scsi isofs (a CD-ROM on
#            virtio-scsi, as vm-clone's hardware model attaches a seed)
#   initrd   busybox-static + an init script that mounts /dev/vda, prints
#            "GUEST-READ: $(cat /hello.txt)", writes /marker-ID.txt (ID from
#            vmcid=ID on the kernel command line), syncs, prints BOOT-OK-ID
#            and powers off; with vmcseed on the command line it first
#            mounts the CD-ROM /dev/sr0 and prints "GUEST-HOSTNAME: " and
#            the local-hostname of its cloud-init meta-data; with vmchold
#            it stays up after BOOT-OK-ID (for a test to kill QEMU)
# Sets $KERNEL and $INITRD. Skips (77) when a tool or a package is missing.

requires qemu-system-x86_64 --version
requires mke2fs -V
requires debugfs -V
requires dpkg-deb --version
requires apt-get --version

cache=${BOOT_CACHE:-$T/cache}
mkdir -p "$cache"
KERNEL=$cache/vmlinuz
INITRD=$cache/initrd-2.gz      # -2: with the CD-ROM modules

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
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk scsi_common scsi_mod cdrom sr_mod virtio_scsi isofs; do
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
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk scsi_common scsi_mod cdrom sr_mod virtio_scsi isofs; do
    insmod /lib/modules/$m.ko || echo "GUEST: insmod $m failed"
done
id=$(sed -n 's/.*vmcid=\([0-9a-z]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if grep -q vmcseed /proc/cmdline; then
    i=0
    while [ ! -b /dev/sr0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    mkdir -p /cd
    if mount -t iso9660 -o ro /dev/sr0 /cd; then
        echo "GUEST-HOSTNAME: $(sed -n 's/^local-hostname: *//p' /cd/meta-data)"
        umount /cd
    else
        echo "GUEST: cannot mount the seed /dev/sr0"
    fi
fi
if mount -t ext4 /dev/vda /mnt; then
    echo "GUEST-READ: $(cat /mnt/hello.txt)"
    echo "marker of guest $id" > /mnt/marker-$id.txt
    sync
    umount /mnt
    sync
    echo "BOOT-OK-$id"
    # vmchold: stay up (a test kills QEMU while the guest runs)
    grep -q vmchold /proc/cmdline && sleep 600
else
    echo "GUEST: cannot mount /dev/vda"
fi
poweroff -f
INIT
    chmod 755 "$r/init"
    (cd "$r" && find . | "$r/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$w/initrd.gz" ||
        fail "cannot build the initramfs"
    # each file appears whole (boot tests may build it at the same time)
    cp "$w/vmlinuz" "$KERNEL.tmp.$$" && mv "$KERNEL.tmp.$$" "$KERNEL" ||
        fail "cannot cache the kernel"
    cp "$w/initrd.gz" "$INITRD.tmp.$$" && mv "$INITRD.tmp.$$" "$INITRD" ||
        fail "cannot cache the initramfs"
    rm -rf "$w"
}

[ -s "$KERNEL" ] && [ -s "$INITRD" ] || build_guest
