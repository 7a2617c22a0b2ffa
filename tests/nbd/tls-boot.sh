#!/bin/bash
# tls-boot: a real guest boots over NBD with TLS (reliability test 20):
# QEMU's -object tls-creds-psk / tls-creds-x509 (endpoint=client) and
# -blockdev driver=nbd,tls-creds=... against vm-clone serve with TLS
# required on TCP loopback. Each guest (guest-lib.sh, under TCG) reads the
# template's file and writes its marker; afterwards each clone holds its
# marker, checks clean, and the template is unchanged. Suite 'boot'.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
. "$TESTS_DIR/nbd/guest-lib.sh"
. "$TESTS_DIR/nbd/tls-lib.sh"

make_x509
make_psk
mkdir -p rootfs
echo "hello from the template" > rootfs/hello.txt
mke2fs -q -t ext4 -d rootfs -F tmpl.raw 32M || fail "mke2fs -d"
qemu-img convert -f raw -O qcow2 tmpl.raw template.qcow2 || fail "template"
tsum=$(sha template.qcow2)

# boot_tls ID OBJECT PORT: boot from export cID.qcow2 at 127.0.0.1:PORT
# through the TLS credentials OBJECT (id "tls0")
boot_tls() {
    local id=$1 obj=$2 port=$3 rc=0
    timeout 120 qemu-system-x86_64 -accel tcg -m 192 -nographic -no-reboot \
        -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1 no_timer_check vmcid=$id" \
        -object "$obj" \
        -blockdev "driver=nbd,node-name=d0,server.type=inet,server.host=127.0.0.1,server.port=$port,export=c$id.qcow2,tls-creds=tls0" \
        -device virtio-blk-pci,drive=d0 > "guest-$id.log" 2>&1 < /dev/null || rc=$?
    grep -q "BOOT-OK-$id" "guest-$id.log" ||
        fail "guest $id did not boot over TLS (rc $rc): $(tail -5 "guest-$id.log")"
    grep -q "GUEST-READ: hello from the template" "guest-$id.log" ||
        fail "guest $id did not read the template's file"
}

# check_clone IMG ID: check-clean, and its file system holds marker-ID
check_clone() {
    qemu_check "$1"
    qemu-img convert -f qcow2 -O raw "$1" "$1.raw" || fail "convert $1"
    [ "$(debugfs -R "cat /marker-$2.txt" "$1.raw" 2>/dev/null)" = "marker of guest $2" ] ||
        fail "$1 does not hold marker-$2"
    rm -f "$1.raw"
}

# port_of NAME: the TCP port server NAME listens on
port_of() {
    local u
    u=$(tcp_uri "$1")
    u=${u#nbds://127.0.0.1:}
    echo "${u%%/*}"
}

start=$(date +%s)
ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 c1.qcow2
ok vmc img create -f qcow2 -b template.qcow2 -F qcow2 c2.qcow2
serve p -v --tls-psk "$T/psk/keys.psk" --listen 127.0.0.1:0 c1.qcow2
boot_tls 1 "tls-creds-psk,id=tls0,dir=$T/psk,username=alice,endpoint=client" "$(port_of p)"
stop_server p
grep -q 'TLS started.*PSK user alice' p.err || fail "the PSK guest did not use TLS"
check_clone c1.qcow2 1
note "guest 1 booted over NBD with TLS (PSK)"

serve x -v --tls-creds "$T/srv" --listen 127.0.0.1:0 c2.qcow2
boot_tls 2 "tls-creds-x509,id=tls0,dir=$T/cli,endpoint=client" "$(port_of x)"
stop_server x
grep -q 'TLS started' x.err || fail "the X.509 guest did not use TLS"
check_clone c2.qcow2 2
note "guest 2 booted over NBD with TLS (X.509, client certificate)"

[ "$(sha template.qcow2)" = "$tsum" ] || fail "the template changed"
note "TLS boot tests took $(( $(date +%s) - start )) s"
