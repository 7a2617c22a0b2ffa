#!/bin/bash
# export: `vm-clone export VM[@SNAP] --format F --output DIR` writes each
# disk of a VM as one standalone image (issue 12, "Catalog and CLI"):
#  - in every format (qcow2, raw, vmdk with its subformats, vhdx, vpc, vdi)
#    qemu-img reads the file back equal to the VM's guest view, without a
#    backing file; qemu-img check accepts the ones it can check;
#  - VM@SNAP (and --snapshot) exports what the snapshot froze, not the
#    VM's later writes;
#  - --format ova makes an OVF appliance (descriptor, manifest,
#    streamOptimized disk) that imports back into a fresh store with the
#    VM's CPUs, memory, NICs and disk content;
#  - an existing file is never replaced (exit 4), a bad format is a usage
#    error (exit 2), an unknown VM or snapshot exit 3, and no temporary
#    file is left behind.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2 32M
ok vmc template import t t.qcow2 -q
ok vmc clone t --name a -q
vmc info a --json > a.json || fail "info a"
disk=$(jget a.json 'd["disks"][0]["path"]')
qemu-io -f qcow2 -c 'write -P 0x11 3M 1M' "$disk" > /dev/null || fail "qemu-io"
ok vmc snapshot create a s1 -q
disk=$(vmc info a --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["path"])')
qemu-io -f qcow2 -c 'write -P 0x22 3M 1M' -c 'write -P 0x33 31M 512k' "$disk" > /dev/null ||
    fail "qemu-io after the snapshot"
qemu-img convert -U -O raw "$disk" a.raw || fail "qemu-img convert"

mkdir out
check_export() {    # FILE FMT: equal to the VM now, standalone, checks
    local f=$1 fmt=$2 backing
    [ -f "$f" ] || fail "$fmt: no $f"
    qemu-img compare -q -f raw -F "$fmt" a.raw "$f" || fail "$fmt: $f differs from the VM"
    backing=$(qemu-img info -U --output=json -f "$fmt" "$f" |
              python3 -c 'import json,sys; print(json.load(sys.stdin).get("backing-filename", ""))')
    [ -z "$backing" ] || fail "$fmt: the export has a backing file ($backing)"
    case $fmt in qcow2|vmdk|vhdx|vdi)
        qemu-img check -q -f "$fmt" "$f" || fail "$fmt: qemu-img check $f" ;;
    esac
}
for fmt in qcow2 raw vmdk vhdx vpc vdi; do
    ok vmc export a --format "$fmt" --output out -q
done
check_export out/a-disk0.qcow2 qcow2
check_export out/a-disk0.img raw
check_export out/a-disk0.vmdk vmdk
check_export out/a-disk0.vhdx vhdx
check_export out/a-disk0.vhd vpc
check_export out/a-disk0.vdi vdi
mkdir out2
ok vmc export a --format vmdk -o subformat=streamOptimized --output out2 --json > so.json
[ "$(jget so.json 'd["files"]')" = "['out2/a-disk0.vmdk']" ] || fail "--json: $(cat so.json)"
qemu-img info -U out2/a-disk0.vmdk | grep -q streamOptimized || fail "not streamOptimized"
check_export out2/a-disk0.vmdk vmdk

# the snapshot: what it froze
ok vmc export a@s1 --output out -q
qemu-io -f qcow2 -r -c 'read -P 0x11 3M 1M' -c 'read -P 0 31M 512k' "out/a@s1-disk0.qcow2" > /dev/null ||
    fail "a@s1: not the snapshot's content"
ok vmc export a --snapshot s1 --format raw --output out2 -q
qemu-img compare -q -f raw -F qcow2 out2/a@s1-disk0.img out/a@s1-disk0.qcow2 ||
    fail "--snapshot s1 and a@s1 differ"

# an OVF appliance that imports back, into a fresh store, with the same
# hardware and disk
ok vmc vm set a --cpus 3 --memory 1536 -q
mkdir ova
ok vmc export a --format ova --output ova --json > ova.json
[ "$(jget ova.json 'd["files"]')" = "['ova/a.ova']" ] || fail "ova --json: $(cat ova.json)"
[ "$(tar tf ova/a.ova | tr '\n' ' ')" = "a.ovf a.mf a-disk0.vmdk " ] ||
    fail "the appliance's members: $(tar tf ova/a.ova)"
[ -z "$(ls -A ova | grep -v '^a\.ova$')" ] || fail "ova export left $(ls -A ova)"
VMCLONE_HOME=$T/h2 ok vmc init -q
VMCLONE_HOME=$T/h2 ok vmc template import back ova/a.ova -q
VMCLONE_HOME=$T/h2 ok vmc template info back --json > back.json
[ "$(jget back.json '[d["cpus"], d["memory_mb"], d["nics"]]')" = "[3, 1536, $(vmc info a --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["nics"]))')]" ] ||
    fail "the appliance's hardware: $(cat back.json)"
qemu-img compare -q -f raw -F qcow2 a.raw "$(jget back.json 'd["disks"][0]["path"]')" ||
    fail "the appliance's disk differs from the VM"
expect_rc 4 vmc export a --format ova --output ova
expect_rc 2 vmc export a --format ova -o subformat=monolithicSparse --output ova

# refusals
sum=$(sha256sum out/a-disk0.qcow2)
expect_rc 4 vmc export a --output out
err_matches "exists"
[ "$(sha256sum out/a-disk0.qcow2)" = "$sum" ] || fail "an export replaced an existing file"
expect_rc 2 vmc export a --format ova2 --output out
expect_rc 2 vmc export a
expect_rc 3 vmc export nosuch --output out
expect_rc 3 vmc export a@nosnap --output out
expect_rc 3 vmc export a --output out/nodir
[ -z "$(ls -A out out2 | grep '^\.')" ] || fail "temporary files left: $(ls -A out out2)"
fsck_clean
