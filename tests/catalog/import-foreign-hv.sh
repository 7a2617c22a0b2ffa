#!/bin/bash
# import-foreign-hv: `template import` of Hyper-V/Azure (VHDX, VHD) and
# VirtualBox (VDI) disks made by qemu-img with qemu-io patterns (issue
# 12; import-foreign.sh covers VMDK). Each subformat imports as a qcow2
# template whose guest view equals the source (`qemu-img compare`), the
# summary names the format read, and the template is never a raw copy of
# the container's bytes (the regression: before the read drivers such a
# file became a "raw" template of itself, exit 0).
. "$(dirname "$0")/cat-lib.sh"

# fill FILE FMT: patterns at scattered offsets, a zeroed region and a
# partly written last block of the 24 MiB disk
fill() {
    qemu-io -f "$2" -c 'write -P 0x11 0 64k' -c 'write -P 0x22 3M 4k' \
        -c 'write -P 0x33 10M 1M' -c 'write -z 10M 128k' \
        -c 'write -P 0x44 24572k 3k' "$1" > /dev/null || fail "qemu-io $1"
}

# check_import NAME FILE FMT: imported as FMT, guest view equal, qcow2,
# and not the container's bytes taken as a raw disk
check_import() {
    local name=$1 f=$2 fmt=$3 disk
    vmc template import "$name" "$f" > out 2> err ||
        fail "import of $f ($fmt): $(cat err)"
    grep -q "read as $fmt" out || fail "import of $f: summary does not say $fmt: $(cat out)"
    vmc template info "$name" --json > t.json || fail "template info $name"
    disk=$(jget t.json 'd["disks"][0]["path"]')
    qemu-img compare -q -f "$fmt" -F qcow2 "$f" "$disk" ||
        fail "template $name: guest view differs from $f"
    [ "$(qemu-img info --output=json "$disk" | jget /dev/stdin 'd["format"]')" = qcow2 ] ||
        fail "template $name is not qcow2"
    # the regression: never the container's own bytes as the guest disk
    if qemu-img compare -q -f raw -F qcow2 "$f" "$disk" 2> /dev/null; then
        fail "template $name is a raw copy of the $fmt container"
    fi
    note "$f: imported as $fmt"
}

qemu-img create -q -f vhdx disk-dyn.vhdx 24M || fail "create vhdx"
fill disk-dyn.vhdx vhdx
check_import vhdx-dyn disk-dyn.vhdx vhdx
qemu-img create -q -f vhdx -o block_size=1M disk-1m.vhdx 24M || fail "create vhdx 1M"
fill disk-1m.vhdx vhdx
check_import vhdx-1m disk-1m.vhdx vhdx
qemu-img create -q -f vhdx -o subformat=fixed disk-fixed.vhdx 24M || fail "create fixed vhdx"
fill disk-fixed.vhdx vhdx
check_import vhdx-fixed disk-fixed.vhdx vhdx

qemu-img create -q -f vpc -o force_size=on disk-dyn.vhd 24M || fail "create vhd"
fill disk-dyn.vhd vpc
check_import vhd-dyn disk-dyn.vhd vpc
# a fixed VHD is raw data plus a 512-byte footer: qemu-img itself takes it
# for raw without -f; the footer makes it a VHD here
qemu-img create -q -f vpc -o subformat=fixed,force_size=on disk-fixed.vhd 24M ||
    fail "create fixed vhd"
fill disk-fixed.vhd vpc
check_import vhd-fixed disk-fixed.vhd vpc

qemu-img create -q -f vdi disk-dyn.vdi 24M || fail "create vdi"
fill disk-dyn.vdi vdi
check_import vdi-dyn disk-dyn.vdi vdi
qemu-img create -q -f vdi -o static=on disk-static.vdi 24M || fail "create static vdi"
fill disk-static.vdi vdi
check_import vdi-static disk-static.vdi vdi

# A VHDX whose log holds an entry (a dirty image: the writer died before
# replaying it) is refused as damaged, exit 6, nothing left: the reader
# does not replay a log (a read-only import must not write the source,
# and replaying into a copy is not done yet). qemu-img cannot make one:
# tests/interop/vhdx-tool.py patches a qemu-img-made file (new log GUID
# in both headers, CRC-32C redone, one "loge" entry at the log offset).
cp disk-dyn.vhdx dirty.vhdx
python3 "$(dirname "$0")/../interop/vhdx-tool.py" log-entry dirty.vhdx || fail "vhdx-tool log-entry"
rc=0
vmc template import dirty dirty.vhdx > out 2> err || rc=$?
[ "$rc" = 6 ] && grep -q "VHDX has an unreplayed log" err ||
    fail "dirty VHDX: exit $rc: $(cat err)"
[ "$(sql "SELECT count(*) FROM templates WHERE name = 'dirty'")" = 0 ] ||
    fail "a template row was left for the dirty VHDX"
# the same file with an empty log (a log GUID, no entry) imports
cp disk-dyn.vhdx clean.vhdx
python3 "$(dirname "$0")/../interop/vhdx-tool.py" log-guid clean.vhdx || fail "vhdx-tool log-guid"
check_import clean clean.vhdx vhdx

# --format names the source format
vmc template import named disk-dyn.vdi --format vdi > out || fail "import --format vdi"
grep -q "read as vdi" out || fail "import --format vdi: summary: $(cat out)"

# Declared raw: refused naming the format, nothing left behind.
for f in disk-dyn.vhdx:vhdx disk-dyn.vhd:vpc disk-dyn.vdi:vdi; do
    rc=0
    vmc template import declared "${f%%:*}" -f raw > out 2> err || rc=$?
    [ "$rc" = 1 ] && grep -q "named raw but is a ${f#*:} image" err ||
        fail "import -f raw ${f%%:*}: exit $rc: $(cat err)"
    [ "$(sql "SELECT count(*) FROM templates WHERE name = 'declared'")" = 0 ] ||
        fail "a template row was left for declared"
done

# Several foreign disks make one multi-disk template, each its own view.
vmc template import multi disk-dyn.vhdx disk-dyn.vhd disk-dyn.vdi > out ||
    fail "multi-disk import"
grep -q "3 disks (read as vhdx, vpc, vdi)" out || fail "multi-disk summary: $(cat out)"
vmc template info multi --json > m.json || fail "template info multi"
i=0
for f in disk-dyn.vhdx:vhdx disk-dyn.vhd:vpc disk-dyn.vdi:vdi; do
    qemu-img compare -q -f "${f#*:}" -F qcow2 "${f%%:*}" \
        "$(jget m.json "d['disks'][$i]['path']")" || fail "multi disk $i differs"
    i=$((i + 1))
done
echo "import-foreign-hv: ok"
