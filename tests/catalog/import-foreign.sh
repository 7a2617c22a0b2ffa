#!/bin/bash
# import-foreign: `template import` of another hypervisor's disk (made by
# qemu-img) never yields a raw template of the container's bytes (issue
# 12's regression). Each VMDK subformat imports as a qcow2 template whose
# guest view equals the source (`qemu-img compare`); a delta disk only
# with --flatten; a format without a driver yet (VHDX) imports the same
# way or is refused naming its format. A file declared raw (-f raw) whose bytes are
# a container is refused naming the format, with no row left, unless
# --force-raw; --format FMT names the source format.
. "$(dirname "$0")/cat-lib.sh"

# mk_vmdk FILE SUBFORMAT: 24 MiB (twoGb*: 2100 MiB, two extents) with
# patterns at scattered offsets, a zero region and a partly written last
# grain, converted by qemu-img from a filled raw image (qemu-io cannot
# fill a streamOptimized file)
mk_vmdk() {
    local f=$1 sub=$2 size=24M
    case $sub in twoGb*) size=2100M ;; esac
    rm -f src.raw
    qemu-img create -q -f raw src.raw $size || fail "qemu-img create src.raw"
    qemu-io -f raw -c 'write -P 0x11 0 64k' -c 'write -P 0x22 3M 4k' \
        -c 'write -P 0x33 10M 1M' -c 'write -z 10M 128k' \
        -c 'write -P 0x44 24572k 3k' src.raw > /dev/null || fail "qemu-io src.raw"
    case $sub in twoGb*)
        qemu-io -f raw -c 'write -P 0x55 2047M 2M' -c 'write -P 0x66 2099M 1000k' src.raw \
            > /dev/null || fail "qemu-io src.raw" ;;
    esac
    qemu-img convert -f raw -O vmdk -o subformat="$sub" src.raw "$f" ||
        fail "qemu-img convert -O vmdk $sub"
}

no_row() {      # no_row NAME
    [ "$(sql "SELECT count(*) FROM templates WHERE name = '$1'")" = 0 ] ||
        fail "a template row was left for $1"
}

# imported_or_refused NAME FILE FMT: a template equal to FILE, or a
# refusal naming FMT; never a raw copy of the container
imported_or_refused() {
    local name=$1 f=$2 fmt=$3 rc=0 disk
    vmc template import "$name" "$f" > out 2> err || rc=$?
    if [ "$rc" != 0 ]; then
        grep -q "is a $fmt image" err || fail "import of $f: no refusal naming $fmt: $(cat err)"
        no_row "$name"
        note "$f: refused as $fmt"
        return 1
    fi
    grep -q "read as $fmt" out || fail "import of $f: summary does not say $fmt: $(cat out)"
    vmc template info "$name" --json > t.json || fail "template info $name"
    disk=$(jget t.json 'd["disks"][0]["path"]')
    qemu-img compare -q -f "$fmt" -F qcow2 "$f" "$disk" ||
        fail "template $name: guest view differs from $f"
    [ "$(qemu-img info --output=json "$disk" | jget /dev/stdin 'd["format"]')" = qcow2 ] ||
        fail "template $name is not qcow2"
    note "$f: imported as $fmt"
}

# Every VMDK subformat imports as what it is (a refusal fails here).
for sub in monolithicSparse streamOptimized monolithicFlat twoGbMaxExtentSparse \
           twoGbMaxExtentFlat; do
    mk_vmdk "$sub.vmdk" "$sub"
    imported_or_refused "t-$sub" "$sub.vmdk" vmdk || fail "$sub.vmdk was not imported"
done
cp monolithicSparse.vmdk disk.vmdk
# --format names the source format; the summary says so
vmc template import named disk.vmdk --format vmdk > out || fail "import --format vmdk"
grep -q "read as vmdk" out || fail "import --format vmdk: summary: $(cat out)"
# a delta disk is refused as a template unless flattened (then its view)
qemu-img create -q -f vmdk -b disk.vmdk -F vmdk delta.vmdk || fail "create delta"
qemu-io -f vmdk -c 'write -P 0x66 4k 4k' delta.vmdk > /dev/null || fail "qemu-io delta"
rc=0
vmc template import delta delta.vmdk 2> err || rc=$?
[ "$rc" = 1 ] && grep -q "has a backing file" err || fail "delta without --flatten: exit $rc: $(cat err)"
no_row delta
ok vmc template import delta delta.vmdk --flatten -q
vmc template info delta --json > t.json || fail "template info delta"
qemu-img compare -q -f vmdk -F qcow2 delta.vmdk "$(jget t.json 'd["disks"][0]["path"]')" ||
    fail "flattened delta: guest view differs"

qemu-img create -q -f vhdx disk.vhdx 8M || fail "qemu-img create vhdx"
imported_or_refused vhdx disk.vhdx vhdx || true

# Declared raw: refused naming the format, exit 1, nothing left.
for f in disk.vmdk disk.vhdx; do
    rc=0
    vmc template import declared "$f" -f raw > out 2> err || rc=$?
    [ "$rc" = 1 ] || fail "import -f raw $f: exit $rc, expected 1"
    grep -q "named raw but is a $(basename "${f#*.}") image" err ||
        fail "import -f raw $f: no refusal naming the format: $(cat err)"
    grep -q -- "--force-raw" err || fail "import -f raw $f: no --force-raw hint"
    no_row declared
done
mk_template plain.qcow2
rc=0
vmc template import declared plain.qcow2 -f raw 2> err || rc=$?
[ "$rc" = 1 ] && grep -q "named raw but is a qcow2 image" err ||
    fail "import -f raw of a qcow2 file: exit $rc: $(cat err)"
no_row declared

# --force-raw: the bytes as they are, on purpose.
vmc template import forced disk.vmdk -f raw --force-raw > out || fail "import --force-raw"
grep -q "read as raw" out || fail "--force-raw summary: $(cat out)"
vmc template info forced --json > f.json || fail "template info forced"
qemu-img compare -q -f raw -F qcow2 disk.vmdk "$(jget f.json 'd["disks"][0]["path"]')" ||
    fail "--force-raw template is not the file's bytes"

# A raw disk stays importable as raw, probed or named.
qemu-img create -q -f raw plain.raw 4M
ok vmc template import rawp plain.raw
ok vmc template import rawn plain.raw -f raw
echo "import-foreign: ok"
