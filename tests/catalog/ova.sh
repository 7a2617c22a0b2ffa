#!/bin/bash
# ova: `template import NAME appliance.ova|.ovf` (issue 12). The test
# writes an OVF 1.0 descriptor (2 CPUs, 3 GiB, 2 NICs, two disks made by
# qemu-img as streamOptimized VMDKs, like real appliances) and a SHA-256
# manifest, tars them descriptor first, imports: one two-disk template
# with that hardware, each disk's guest view equal to its source. Then
# the hostile and broken variants, each refused with its exit status and
# no template left: a wrong digest or missing manifest line (6), a disk
# missing from the archive (6), a disk name with ../ or an absolute name
# (1), a 1,000-entity XML bomb (1, fast), a descriptor over 4 MiB (1).
. "$(dirname "$0")/cat-lib.sh"

mk_disk() {     # mk_disk FILE.vmdk SIZE PATTERN
    qemu-img create -q -f raw src.raw "$2" || fail "qemu-img create"
    qemu-io -f raw -c "write -P $3 0 64k" -c "write -P 0x77 1M 4k" src.raw \
        > /dev/null || fail "qemu-io"
    qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw "$1" ||
        fail "qemu-img convert $1"
    rm -f src.raw
}

# write_ovf FILE HREF1 HREF2 [EXTRA]: the descriptor; EXTRA goes before
# the Envelope (a DOCTYPE for the bomb)
write_ovf() {
    cat > "$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
${4:-}<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
    <File ovf:id="f1" ovf:href="$2"/>
    <File ovf:id="f2" ovf:href="$3"/>
  </References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^20"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
    <Disk ovf:diskId="d2" ovf:fileRef="f2" ovf:capacity="4194304"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="app"><Info>a VM</Info>
    <VirtualHardwareSection><Info>hardware</Info>
      <Item><rasd:ElementName>2 CPUs</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>3072</rasd:VirtualQuantity></Item>
      <Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>10</rasd:ResourceType></Item>
      <Item><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>10</rasd:ResourceType></Item>
      <Item><rasd:HostResource>ovf:/disk/d2</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:HostResource>ovf:/disk/d1</rasd:HostResource><rasd:InstanceID>6</rasd:InstanceID>
        <rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
EOF
}

manifest() {    # manifest MF FILE...: SHA256(name)= hex lines
    local f
    for f in "${@:2}"; do
        echo "SHA256($(basename "$f"))= $(sha256sum < "$f" | cut -d' ' -f1)"
    done > "$1"
}

no_row() {
    [ "$(sql "SELECT count(*) FROM templates WHERE name = '$1'")" = 0 ] ||
        fail "a template row was left for $1"
}

# refused NAME FILE RC TEXT: import exits RC naming TEXT, nothing left
refused() {
    local rc=0
    timeout 20 "$VMCLONE" template import "$1" "$2" > out 2> err || rc=$?
    [ "$rc" = "$3" ] || fail "import $2: exit $rc, expected $3: $(cat err)"
    grep -q -- "$4" err || fail "import $2: no '$4' in: $(cat err)"
    no_row "$1"
    [ -z "$(ls "$H/run" | grep '^ova-')" ] || fail "import $2 left a scratch directory"
    note "$2: refused ($3): $(cat err)"
}

mkdir app && cd app || fail "mkdir"
mk_disk boot.vmdk 8M 0x11
mk_disk data.vmdk 4M 0x22
write_ovf app.ovf data.vmdk boot.vmdk
manifest app.mf app.ovf data.vmdk boot.vmdk
tar --format=ustar -cf ../app.ova app.ovf app.mf data.vmdk boot.vmdk || fail "tar"
cd ..

vmc template import app app.ova > out 2> err || fail "import app.ova: $(cat err)"
grep -q "2 disks (read as vmdk), 2 CPUs, 3072 MiB, 2 NICs; SHA256 manifest checked" out ||
    fail "summary: $(cat out)"
vmc template info app --json > t.json || fail "template info app"
[ "$(jget t.json 'd["cpus"], d["memory_mb"], d["nics"], len(d["disks"])')" = "(2, 3072, 2, 2)" ] ||
    fail "hardware: $(jget t.json 'd["cpus"], d["memory_mb"], d["nics"], len(d["disks"])')"
# disks in the order of the drives: d2 (boot.vmdk) first
qemu-img compare -q -f vmdk -F qcow2 app/boot.vmdk "$(jget t.json 'd["disks"][0]["path"]')" ||
    fail "disk 0 is not boot.vmdk's guest view"
qemu-img compare -q -f vmdk -F qcow2 app/data.vmdk "$(jget t.json 'd["disks"][1]["path"]')" ||
    fail "disk 1 is not data.vmdk's guest view"
[ -z "$(ls "$H/run" | grep '^ova-')" ] || fail "the scratch directory was left"
# the same appliance as a plain .ovf with its files beside it
vmc template import app2 app/app.ovf > out || fail "import app.ovf"
grep -q "2 disks (read as vmdk), 2 CPUs, 3072 MiB, 2 NICs; SHA256" out || fail "ovf summary: $(cat out)"

# hostile and broken variants, each from a fresh directory
variant() {     # variant DIR: a copy of app/ to break
    rm -rf "$1" && cp -r app "$1" && cd "$1" || fail "cp"
}
# a wrong digest
# (its first hex digit changed: 0 -> 1, any other -> 0; the digest of the
# test's random data begins with 0 one time in 16)
variant bad && sed -i -E 's/(SHA256\(data.vmdk\)= )0/\1X/; s/(SHA256\(data.vmdk\)= )[1-9a-f]/\10/; s/(SHA256\(data.vmdk\)= )X/\11/' app.mf
tar -cf ../bad.ova app.ovf app.mf data.vmdk boot.vmdk && cd ..
refused bad bad.ova 6 "does not match its manifest digest"
# a manifest without the line of a disk
variant miss && sed -i '/boot.vmdk/d' app.mf
tar -cf ../miss.ova app.ovf app.mf data.vmdk boot.vmdk && cd ..
refused miss miss.ova 6 "the manifest has no digest of 'boot.vmdk'"
# a disk the descriptor names but the archive lacks
variant lack && tar -cf ../lack.ova app.ovf app.mf data.vmdk && cd ..
refused lack lack.ova 6 "'boot.vmdk' named by the descriptor is not in the archive"
# a disk reference with ../ and an absolute one
variant dots && write_ovf app.ovf ../data.vmdk boot.vmdk && manifest app.mf app.ovf boot.vmdk
tar -cf ../dots.ova app.ovf app.mf boot.vmdk && cd ..
refused dots dots.ova 1 "'../data.vmdk' is not a plain file name"
refused dotsovf dots/app.ovf 1 "'../data.vmdk' is not a plain file name"
variant abs && write_ovf app.ovf /etc/passwd boot.vmdk && manifest app.mf app.ovf boot.vmdk
tar -cf ../abs.ova app.ovf app.mf boot.vmdk && cd ..
refused abs abs.ova 1 "'/etc/passwd' is an absolute name"
# a member of the archive whose name leaves it
variant esc && tar -cf ../esc.ova app.ovf app.mf data.vmdk boot.vmdk -P ../app/app.ovf && cd ..
refused esc esc.ova 1 "is not a plain file name"
# a 1,000-entity bomb ("billion laughs"): refused, and fast (timeout)
bomb='<!DOCTYPE Envelope [ <!ENTITY e0 "lol">'
for i in $(seq 1 999); do bomb="$bomb<!ENTITY e$i \"&e$((i - 1));&e$((i - 1));\">"; done
variant bomb && write_ovf app.ovf data.vmdk boot.vmdk "$bomb]>" &&
    sed -i 's|<Info>a VM</Info>|<Info>\&e999;</Info>|' app.ovf && manifest app.mf app.ovf data.vmdk boot.vmdk
tar -cf ../bomb.ova app.ovf app.mf data.vmdk boot.vmdk && cd ..
refused bomb bomb.ova 1 "declares a DTD or entities"
# a descriptor over 4 MiB
variant huge && { head -c 5M /dev/zero | tr '\0' ' '; } >> app.ovf
tar -cf ../huge.ova app.ovf app.mf data.vmdk boot.vmdk && cd ..
refused huge huge.ova 1 "the descriptor is 5.* bytes: refused"
# not a tar archive; a tar whose first member is not the descriptor
cp app/boot.vmdk notar.ova
refused notar notar.ova 1 "is not an OVA"
(cd app && tar -cf ../order.ova app.mf app.ovf data.vmdk boot.vmdk)
refused order order.ova 1 "first member 'app.mf' is not an .ovf descriptor"
echo "ova: ok"
