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

# The instant-clone guest (issue 16), built only by the tests that call
# instant_guest: Debian's generic kernel (linux-image-amd64: its vmgenid
# driver reseeds the RNG of a restored clone; the cloud flavour has none),
# whose ext4, virtio and qemu_fw_cfg are modules, insmod-ed with their
# dependencies in modules.dep order. Its init mounts /dev/vda on /mnt;
# with vmctemplate on the command line it writes /mnt/tmpl.txt; it prints
# TEMPLATE-READY and then watches fw_cfg opt/vmclone/id: when the id
# changes (a clone restored from the frozen guest), it prints CLONE-ID,
# CLONE-NAME, the template's file (CLONE-TMPL), writes its own name to
# /mnt/who.txt and reads it back after dropping the caches (CLONE-WHO),
# 16 bytes of /dev/urandom (CLONE-RAND), the MAC of its hot-added NIC
# (CLONE-MAC) and CLONE-DONE. Sets $IKERNEL and $IINITRD.
instant_guest() {
    IKERNEL=$cache/vmlinuz-generic
    IINITRD=$cache/initrd-instant-2.gz
    [ -s "$IKERNEL" ] && [ -s "$IINITRD" ] && return 0
    local w=$T/iguestbuild kpkg kver f m r
    rm -rf "$w"
    mkdir -p "$w/dl" "$w/root"
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
    [ -n "$kpkg" ] || skip "no generic kernel package (linux-image-amd64) in apt"
    (cd "$w/dl" && apt-get download "$kpkg" busybox-static) > "$w/dl.log" 2>&1 ||
        skip "cannot download $kpkg and busybox-static: $(tail -1 "$w/dl.log")"
    for d in "$w"/dl/*.deb; do
        dpkg-deb -x "$d" "$w/x" || fail "dpkg-deb -x $d"
    done
    kver=$(ls "$w/x/lib/modules" | head -1)
    r=$w/root
    mkdir -p "$r"/{bin,dev,proc,sys,mnt,lib/modules}
    cp "$w/x/boot/vmlinuz-$kver" "$w/vmlinuz" || fail "no kernel in $kpkg"
    cp "$w/x/bin/busybox" "$r/bin/busybox" || fail "no busybox"
    ln -s busybox "$r/bin/sh"
    # the modules wanted and what they need (the "depends=" of each
    # module's .modinfo; the package has no modules.dep), dependencies first
    local mdir=$w/x/lib/modules/$kver order=$w/order
    : > "$order"
    mkdir -p "$w/ko"
    add_mod() {     # add_mod NAME
        local n=$1 f d
        grep -qx "$n" "$order" && return 0
        f=$(find "$mdir" -name "$n.ko*" -o -name "${n//_/-}.ko*" | head -1)
        if [ -z "$f" ]; then
            grep -Eq "/($n|${n//_/-})\.ko" "$mdir/modules.builtin" 2>/dev/null &&
                return 0                # built in
            fail "module $n not in $kpkg"
        fi
        case $f in
        *.ko) cp "$f" "$w/ko/$n.ko" ;;
        *.ko.xz) xz -dc "$f" > "$w/ko/$n.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$w/ko/$n.ko" ;;
        *) fail "unknown module compression: $f" ;;
        esac
        for d in $(tr '\0' '\n' < "$w/ko/$n.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
            add_mod "$d"
        done
        echo "$n" >> "$order"
    }
    for m in virtio_pci virtio_blk virtio_net crc32c_generic ext4 qemu_fw_cfg; do
        add_mod "$m"
    done
    while read -r m; do
        cp "$w/ko/$m.ko" "$r/lib/modules/$m.ko"
    done < "$order"
    cp "$order" "$r/lib/modules/load"
    cat > "$r/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load); do
    insmod /lib/modules/$m.ko || echo "GUEST: insmod $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 /dev/vda /mnt || echo "GUEST: cannot mount /dev/vda"
if grep -q vmctemplate /proc/cmdline; then
    echo "written by the template before freeze" > /mnt/tmpl.txt
    sync
fi
fw=/sys/firmware/qemu_fw_cfg/by_name/opt/vmclone
last=$(tr -d ' ' < $fw/id/raw)
echo "TEMPLATE-READY $last"
while :; do
    id=$(tr -d ' ' < $fw/id/raw)
    if [ -n "$id" ] && [ "$id" != "$last" ]; then
        last=$id
        name=$(tr -d ' ' < $fw/name/raw)
        echo "CLONE-ID: $id"
        echo "CLONE-NAME: $name"
        echo "CLONE-TMPL: $(cat /mnt/tmpl.txt)"
        echo "written by $name" > /mnt/who.txt
        sync
        echo 3 > /proc/sys/vm/drop_caches
        echo "CLONE-WHO: $(cat /mnt/who.txt)"
        echo "CLONE-RAND: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        mac=
        i=0
        while [ -z "$mac" ] && [ $i -lt 100 ]; do
            for n in /sys/class/net/*; do
                [ "${n##*/}" = lo ] || mac=$(cat $n/address)
            done
            [ -n "$mac" ] || sleep 0.1
            i=$((i + 1))
        done
        echo "CLONE-MAC: $mac"
        echo "CLONE-DONE: $name"
    fi
    sleep 0.1
done
INIT
    chmod 755 "$r/init"
    (cd "$r" && find . | "$r/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$w/initrd.gz" ||
        fail "cannot build the initramfs"
    cp "$w/vmlinuz" "$IKERNEL.tmp.$$" && mv "$IKERNEL.tmp.$$" "$IKERNEL" ||
        fail "cannot cache the kernel"
    cp "$w/initrd.gz" "$IINITRD.tmp.$$" && mv "$IINITRD.tmp.$$" "$IINITRD" ||
        fail "cannot cache the initramfs"
    rm -rf "$w"
}
