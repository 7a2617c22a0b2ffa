#!/bin/bash
# probe: with no -f, a file in any container format QEMU knows is opened
# as that format or refused by name (exit 1, "convert it with ..."), never
# read as raw; an explicit -f raw reads it as raw. Files made by qemu-img
# for every format it can create here (docs: /work/shared/notes/formats.md),
# small hand-made bochs, cloop and DMG headers (qemu-img cannot make them;
# qemu-img -f bochs/cloop reads ours), and plain raw/qcow2 as before.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires python3 --version

mk() {          # mk FILE FMT [OPTS...]
    local f=$1 fmt=$2
    shift 2
    qemu-img create -q -f "$fmt" "$@" "$f" 8M || fail "qemu-img create -f $fmt $f"
}

# probed FILE NAME: without -f, FILE opens as NAME or is refused naming it
probed() {
    local f=$1 name=$2 rc=0
    vmc img info "$f" > out 2> err || rc=$?
    if [ "$rc" = 0 ]; then
        grep -qx "file format: $name" out ||
            fail "$f ($name) opened as $(sed -n 's/^file format: //p' out)"
        note "$f: read as $name"
        return
    fi
    [ "$rc" = 1 ] || fail "$f ($name): exit $rc, expected 1"
    grep -q "'$f' is a $name image" err || fail "$f: refusal does not name $name: $(cat err)"
    grep -q "convert it with '" err || fail "$f: refusal gives no advice: $(cat err)"
    note "$f: refused as $name"
}

# as_raw FILE: -f raw reads any file as raw
as_raw() {
    vmc img info -f raw "$1" > out || fail "img info -f raw $1 failed"
    grep -qx "file format: raw" out || fail "-f raw $1 is not raw"
}

mk sparse.vmdk vmdk
mk stream.vmdk vmdk -o subformat=streamOptimized
mk flat.vmdk vmdk -o subformat=monolithicFlat
mk split.vmdk vmdk -o subformat=twoGbMaxExtentSparse
mk splitflat.vmdk vmdk -o subformat=twoGbMaxExtentFlat
mk dyn.vhdx vhdx
mk fixed.vhdx vhdx -o subformat=fixed
mk dyn.vpc vpc
mk fixed.vpc vpc -o subformat=fixed
mk dyn.vdi vdi
mk static.vdi vdi -o static=on
mk img.qed qed
mk img.parallels parallels
mk img.qcow qcow
ok=0
for i in 1 2 3; do      # the key-derivation timing step fails now and then
    qemu-img create -q -f luks --object secret,id=s,data=k -o key-secret=s,iter-time=10 \
        img.luks 8M 2>/dev/null && { ok=1; break; }
done
[ $ok = 1 ] || fail "qemu-img could not create a LUKS image"

python3 - <<'EOF' || fail "could not write the hand-made headers"
import struct
h = bytearray(512)
h[0:22] = b"Bochs Virtual HD Image"
h[32:39] = b"Redolog"
h[48:55] = b"Growing"
struct.pack_into('<IIIII', h, 64, 0x00020000, 512, 16, 512, 65536)
struct.pack_into('<Q', h, 88, 16 * 65536)
open('img.bochs', 'wb').write(bytes(h) + b'\xff' * 64)
s = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$FILE && mount -r -t iso9660 /dev/cloop $1\n"
c = bytearray(128)
c[:len(s)] = s
c += struct.pack('>II', 512, 1) + struct.pack('>QQ', 144, 160) + bytes(16)
open('img.cloop', 'wb').write(bytes(c))
d = bytearray(8192)
d[-512:-508] = b"koly"
open('img.dmg', 'wb').write(bytes(d))
EOF
qemu-img info -f bochs img.bochs > /dev/null || fail "qemu-img does not read our bochs header"
qemu-img info -f cloop img.cloop > /dev/null || fail "qemu-img does not read our cloop header"

for f in sparse stream flat split splitflat; do
    qemu-img info "$f.vmdk" | grep -qx 'file format: vmdk' || fail "qemu-img: $f.vmdk is not vmdk"
    probed "$f.vmdk" vmdk
    as_raw "$f.vmdk"
done
for f in dyn.vhdx fixed.vhdx; do probed "$f" vhdx; as_raw "$f"; done
for f in dyn.vpc fixed.vpc; do probed "$f" vpc; as_raw "$f"; done
for f in dyn.vdi static.vdi; do probed "$f" vdi; as_raw "$f"; done
for f in qed parallels qcow luks bochs cloop dmg; do
    probed "img.$f" "$f"
    as_raw "img.$f"
done

# A flat extent is raw data; raw and qcow2 are what they always were.
probed flat-flat.vmdk raw
mk plain.raw raw
mk plain.qcow2 qcow2
probed plain.raw raw
probed plain.qcow2 qcow2
# A raw disk whose guest wrote a container magic past the first sector
# stays raw (only the places the formats define count).
printf 'KDMV' | dd of=plain.raw bs=1 seek=4096 conv=notrunc status=none
probed plain.raw raw
echo "probe: ok"
