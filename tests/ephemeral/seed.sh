#!/bin/bash
# seed: cloud-init NoCloud seeds of clones (clone --hostname --ssh-key
# --user-data --network-config, vm set of the same).
#  - the seed is an ISO labelled cidata whose Rock Ridge names (isoinfo
#    -R -f) are meta-data and user-data (+ network-config when given);
#    meta-data has instance-id = the VM's uuid and local-hostname (the
#    VM's name by default); --ssh-key alone gives ssh_authorized_keys
#  - --count 2 with --hostname h%d: two seeds, two hostnames and ids
#  - vm set --hostname/--network-config remakes it (same file name)
#  - rm removes it; fsck stays clean; info shows it; --ephemeral marks
#  - bad input: a hostname with a space, a missing file: clear errors,
#    and a failed clone leaves no VM behind
. "$(dirname "$0")/../catalog/cat-lib.sh"
requires isoinfo -version
requires blkid -V

qemu-img create -q -f qcow2 a.qcow2 8M || fail "create a"
ok vmc template import base a.qcow2 -q
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake it's me" > key.pub

info() { vmc info "$1" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); v=d[sys.argv[1]]; print("" if v is None else v)' "$2"; }
isofile() { isoinfo -R -i "$1" -x "/$2" || fail "isoinfo -x /$2 of $1"; }

# ---- defaults, the key
ok vmc clone base --name vm1 --ssh-key key.pub -q
seed=$(info vm1 seed)
[ -f "$seed" ] || fail "vm1 has no seed: '$seed'"
[ "$(isoinfo -R -f -i "$seed" | sort | tr '\n' ' ')" = "/meta-data /user-data " ] ||
    fail "seed files: $(isoinfo -R -f -i "$seed")"
blkid -o value -s LABEL "$seed" | grep -qx cidata || fail "label: $(blkid "$seed")"
isofile "$seed" meta-data > md
grep -qx "instance-id: $(info vm1 uuid)" md || fail "meta-data: $(cat md)"
grep -qx "local-hostname: vm1" md || fail "meta-data: $(cat md)"
isofile "$seed" user-data > ud
[ "$(head -1 ud)" = "#cloud-config" ] && grep -q "^ssh_authorized_keys:" ud &&
    grep -qF "  - 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake it''s me'" ud || fail "user-data: $(cat ud)"
[ "$(info vm1 ephemeral)" = False ] || fail "vm1 is ephemeral"

# ---- --count 2, user-data and network-config as given, --ephemeral
printf '#cloud-config\nruncmd: [ [ touch, /x ] ]\n' > user.yaml
printf 'version: 2\nethernets:\n  eth0: {dhcp4: true}\n' > net.yaml
ok vmc clone base --name web%d --count 2 --hostname h%d.example --user-data user.yaml \
    --network-config net.yaml --ephemeral -q
for i in 1 2; do
    s=$(info web$i seed)
    [ "$(isoinfo -R -f -i "$s" | sort | tr '\n' ' ')" = "/meta-data /network-config /user-data " ] ||
        fail "web$i seed files: $(isoinfo -R -f -i "$s")"
    isofile "$s" meta-data | grep -qx "local-hostname: h$i.example" || fail "web$i hostname: $(isofile "$s" meta-data)"
    isofile "$s" meta-data | grep -qx "instance-id: $(info web$i uuid)" || fail "web$i instance id"
    cmp -s <(isofile "$s" user-data) user.yaml || fail "web$i user-data differs"
    cmp -s <(isofile "$s" network-config) net.yaml || fail "web$i network-config differs"
    [ "$(info web$i ephemeral)" = True ] || fail "web$i is not ephemeral"
done
[ "$(info web1 uuid)" != "$(info web2 uuid)" ] || fail "the two VMs share an id"

# ---- vm set remakes the seed
ok vmc vm set vm1 --hostname renamed --network-config net.yaml -q
[ "$(info vm1 seed)" = "$seed" ] || fail "the remade seed moved: $(info vm1 seed)"
isofile "$seed" meta-data | grep -qx "local-hostname: renamed" || fail "vm set did not remake: $(isofile "$seed" meta-data)"
isofile "$seed" user-data | grep -q "^ssh_authorized_keys:" || fail "vm set lost the key"
isoinfo -R -f -i "$seed" | grep -qx /network-config || fail "vm set did not add network-config"
ok vmc clone base --name plain -q
[ -z "$(info plain seed)" ] || fail "a clone without seed options has a seed"
ok vmc vm set plain --hostname late -q
isofile "$(info plain seed)" meta-data | grep -qx "local-hostname: late" || fail "vm set made no seed"
ok vmc fsck -q > /dev/null

# ---- rm removes it
ok vmc rm vm1 -q
[ ! -e "$seed" ] || fail "rm left the seed $seed"
ok vmc fsck -q > /dev/null

# ---- bad input
expect_fail vmc clone base --name bad1 --hostname "a b"
err_matches "invalid hostname"
vmc list --json | grep -q '"bad1"' && fail "a clone whose seed failed is left"
expect_fail vmc clone base --name bad2 --ssh-key nosuch.pub
err_matches "cannot read 'nosuch.pub'"
vmc list --json | grep -q '"bad2"' && fail "a clone whose seed failed is left"
expect_fail vmc clone base --name bad%d --count 2 --hostname same
err_matches "one %d"
[ -z "$(ls "$VMCLONE_HOME"/primary | grep '^bad')" ] || fail "failed clones left files"

# ---- start attaches the seed as a read-only CD-ROM
ok vmc start web1 --direct --dry-run > dry.out
grep -qF "file=$(info web1 seed),format=raw,if=none,id=cd0,media=cdrom,readonly=on" dry.out || fail "start: no seed CD-ROM: $(cat dry.out)"
ok vmc start plain --dry-run --ephemeral > dry.out
grep -q "media=cdrom" dry.out || fail "start: no seed CD-ROM for plain"
