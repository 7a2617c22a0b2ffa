#!/bin/bash
# hw-model: `vm xml`, `vm qemu-cmd` and `start --dry-run` of one VM come
# from one hardware model and agree (issue 14):
#  - the same accelerator (detected: a device that is not a working KVM
#    gives tcg and <domain type='qemu'>; --accel kvm gives both kvm),
#    the same network (user by default, bridge:NAME, none), the same disks
#    in order and the same MACs;
#  - the XML carries each disk's whole <backingStore> chain (a snapshot
#    makes it three deep) and validates (virt-xml-validate);
#  - a template marked uefi gives the OVMF ROM in both;
#  - start of a VM on a sealed template goes through the NBD server (its
#    disks are nbd+unix URIs; the same accelerator, network and MACs);
#    --direct opens the files (above); an unsealed chain opens the files;
#  - bad --accel / --network values are usage errors (exit 2).
. "$(dirname "$0")/../lib.sh"
requires virt-xml-validate --version
requires python3 --version

export VMCLONE_HOME=$T/home
vmc init -q || fail "init"
qemu-img create -q -f qcow2 a.qcow2 8M || fail "create a"
qemu-img create -q -f qcow2 b.qcow2 4M || fail "create b"
ok vmc template import base a.qcow2 b.qcow2 --cpus 2 --memory 256 --nics 2 -q
ok vmc clone base --linked --name vm1 -q
ok vmc snapshot create vm1@s1 -q
vmc info vm1 --json > info.json || fail "info"

# compare [ARGS...]: the three renderings with ARGS agree with info.json;
# prints "ACCEL NET" as the three say it
compare() {
    vmc vm xml vm1 "$@" > x.xml || fail "vm xml $*"
    virt-xml-validate x.xml domain > /dev/null || fail "vm xml $* does not validate: $(cat x.xml)"
    vmc vm qemu-cmd vm1 --json "$@" > q.json || fail "vm qemu-cmd $*"
    vmc start vm1 --direct --dry-run --json "$@" > s.json || fail "start --dry-run $*"
    python3 - info.json x.xml q.json s.json <<'PY' || fail "renderings of '$*' disagree"
import json, sys, xml.etree.ElementTree as ET
info = json.load(open(sys.argv[1]))
dom = ET.parse(sys.argv[2]).getroot()
q = json.load(open(sys.argv[3]))["argv"]
s = json.load(open(sys.argv[4]))["argv"]
assert q == s, ("qemu-cmd and start differ", q, s)
accel_x = {"qemu": "tcg", "kvm": "kvm"}[dom.get("type")]
accel_q = q[q.index("-accel") + 1]
assert accel_x == accel_q, (accel_x, accel_q)
# disks: the same files in the same order, with their chains
want = [d["path"] for d in info["disks"]]
xd = [d.find("source").get("file") for d in dom.iter("disk")]
qd = [a.split("file=", 1)[1].split(",format=")[0] for a in q if a.startswith("file=")]
assert want == xd == qd, (want, xd, qd)
for d, disk in zip(dom.iter("disk"), info["disks"]):
    chain, b = [], d.find("backingStore")
    while b is not None and b.find("source") is not None:
        chain.append(b.find("source").get("file"))
        b = b.find("backingStore")
    assert b is not None, "the chain does not end in <backingStore/>"
    assert chain == [l["path"] for l in disk["chain"][1:]], (chain, disk["chain"])
# network and MACs
macs = [n["mac"] for n in info["nics"]]
ifs = list(dom.iter("interface"))
xnet = ifs[0].get("type") if ifs else "none"
xmacs = [i.find("mac").get("address") for i in ifs]
qn = [q[i + 1] for i, a in enumerate(q) if a == "-netdev"]
qnet = qn[0].split(",")[0] if qn else "none"
qmacs = [a.split("mac=")[1] for a in q if a.startswith("virtio-net-pci")]
assert xnet == qnet, (xnet, qnet)
if xnet != "none":
    assert xmacs == qmacs == macs, (xmacs, qmacs, macs)
else:
    assert "-nic" in q and not xmacs and not qmacs
fw_x = dom.find("os/loader")
fw_q = q[q.index("-bios") + 1] if "-bios" in q else None
assert (fw_x.text if fw_x is not None else None) == fw_q, (fw_x, fw_q)
print(accel_x, xnet, "uefi" if fw_q else "bios")
PY
}

# a regular file is no KVM: tcg, type='qemu', quickly
export VMCLONE_KVM_DEVICE=$T/not-kvm
: > "$VMCLONE_KVM_DEVICE"
t0=$(date +%s%N)
[ "$(compare)" = "tcg user bios" ] || fail "default: $(compare)"
grep -q "^<domain type='qemu'>" x.xml || fail "no working KVM but $(head -1 x.xml)"
[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 10000 ] || fail "the KVM probe is slow"
[ "$(python3 -c 'import json;print(len(json.load(open("info.json"))["disks"][0]["chain"]))')" = 3 ] ||
    fail "expected a three-layer chain (VM, snapshot, copy)"
grep -c '<backingStore type=' x.xml | grep -qx 4 || fail "backing stores: $(grep -c '<backingStore type=' x.xml)"
# the machine's own /dev/kvm (here missing or hanging: tcg; else kvm)
unset VMCLONE_KVM_DEVICE
r=$(compare) || fail "compare with the real device"
note "this machine's accelerator: ${r%% *}"
export VMCLONE_KVM_DEVICE=$T/not-kvm

[ "$(compare --accel kvm)" = "kvm user bios" ] || fail "--accel kvm"
grep -q "^<domain type='kvm'>" x.xml || fail "--accel kvm: $(head -1 x.xml)"
[ "$(compare --accel tcg --network bridge:br0)" = "tcg bridge bios" ] || fail "--network bridge:br0"
grep -q "<source bridge='br0'/>" x.xml || fail "bridge source"
[ "$(compare --network none)" = "tcg none bios" ] || fail "--network none"
vmc vm xml vm1 --network network:lan > x.xml || fail "network:lan"
grep -q "<source network='lan'/>" x.xml && grep -q "<interface type='network'>" x.xml || fail "network:lan: $(cat x.xml)"
virt-xml-validate x.xml domain > /dev/null || fail "network:lan does not validate"

# a UEFI template (template import --firmware uefi): OVMF in both
expect_rc 2 vmc template import bad a.qcow2 --firmware efi
ok vmc template import efi a.qcow2 b.qcow2 --cpus 2 --memory 256 --nics 2 --firmware uefi -q
ok vmc rm vm1 -q
ok vmc clone efi --name vm1 -q
vmc info vm1 --json > info.json || fail "info (efi)"
r=$(compare) || fail "uefi"
[ "${r##* }" = uefi ] || fail "uefi template: $r"

# sealed chains start through the NBD server by default
vmc start vm1 --dry-run --json > nbd.json || fail "start --dry-run"
python3 - nbd.json q.json <<'PY' || fail "default start of a sealed chain: $(cat nbd.json)"
import json, sys
s = json.load(open(sys.argv[1]))
q = json.load(open(sys.argv[2]))["argv"]
assert s["serve_argv"] and s["serve_argv"][1] == "serve", s
drives = [a for a in s["argv"] if a.startswith("file=")]
assert len(drives) == 2 and all(d.startswith("file=nbd+unix:///vm1/disk") for d in drives), drives
strip = lambda v: [a for a in v if not a.startswith("file=")]
assert strip(s["argv"]) == strip(q), (s["argv"], q)
PY
expect_rc 2 vmc start vm1 --nbd --direct --dry-run
# a chain without a seal: QEMU opens the files
ok vmc clone vm1 --full --name full1 -q
vmc start full1 --dry-run --json > full.json || fail "start --dry-run full1"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["serve_argv"] is None, s; assert any(a.startswith("file=/") for a in s["argv"]), s' full.json ||
    fail "start of an unsealed chain: $(cat full.json)"

expect_rc 2 vmc vm xml vm1 --accel xen
err_matches "accel"
expect_rc 2 vmc vm qemu-cmd vm1 --network wifi
err_matches "network"
expect_rc 2 vmc start vm1 --dry-run --accel kvm:tcg
expect_rc 3 vmc vm xml nosuch --accel tcg
