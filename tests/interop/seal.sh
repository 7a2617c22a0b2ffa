#!/bin/bash
# seal: sealed templates.
#  - sealing makes the file 0444, records the root in a qcow2 extension
#    that qemu-img check accepts, and our engine refuses writes to it;
#  - a clone made from it reads and writes normally, passes qemu-img check,
#    and keeps its parent-seal record when QEMU writes into it;
#  - a damaged template chunk fails the clone's read with a message naming
#    the template and offset (never wrong data); verify finds it (exit 2);
#    verify --repair-from a replica repairs it (exit 0, bytes restored);
#  - a template modified and re-sealed: its old clones refuse to open,
#    whichever way they were made (img create -b, clone --linked [--count],
#    relink, rebase [-u], the layer consolidate makes); rebase -u onto the
#    new seal or a rebase onto an unsealed base updates the record;
#  - raw templates are sealed by their sidecar alone;
#  - a layer over a sealed base takes the base's digests for the chunks
#    it does not hold, without reading them: sealed over a base chunk
#    damaged meanwhile, it gets the root of its original content, and a
#    read of that chunk through it still fails.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

qemu-img create -q -f qcow2 t.qcow2 32M
qemu-io -f qcow2 -c 'write -P 0x71 0 8M' -c 'write -P 0x72 20M 1M' t.qcow2 >/dev/null
raw_of t.qcow2 t.raw
ok vmc img seal t.qcow2
[ "$(stat -c %a t.qcow2)" = 444 ] || fail "sealed template is not mode 0444"
[ -s t.qcow2.seal ] || fail "no seal sidecar"
qemu_check t.qcow2
qemu_same t.qcow2 t.raw qcow2 raw
expect_fail vmc img io -f qcow2 t.qcow2 -c 'write 0 512'
err_matches "sealed template"
expect_fail vmc img seal t.qcow2
err_matches "already sealed"
ok vmc img verify t.qcow2

# a clone of the sealed template
ok vmc img create -q -f qcow2 -b t.qcow2 -F qcow2 c.qcow2
ok vmc img io -f qcow2 c.qcow2 -c 'read -P 0x71 0 8M' -c 'write -P 0x11 4096 4096'
qemu_check c.qcow2
qemu-io -f qcow2 -c 'write -P 0x12 1M 64k' c.qcow2 >/dev/null || fail "qemu-io cannot write the clone"
ok vmc img io -f qcow2 c.qcow2 -c 'read -P 0x12 1M 64k' -c 'read -P 0x72 20M 1M'
cp t.qcow2 replica.qcow2; cp t.qcow2.seal replica.qcow2.seal
chmod u+w t.qcow2

# damage one byte of template data (first data cluster after metadata)
off=$(qemu-img map -f qcow2 --output=json t.qcow2 | python3 -c 'import json,sys; print([e["offset"] for e in json.load(sys.stdin) if e["data"]][0])')
printf 'X' | dd of=t.qcow2 bs=1 seek=$((off + 100000)) conv=notrunc status=none
expect_fail vmc img io -f qcow2 c.qcow2 -c 'read 0 8M'
err_matches "t.qcow2.*damaged.*offset 65536"
expect_rc 2 vmc img verify t.qcow2
grep -q "CORRUPT chunk at offset 65536" "$T/vmc.err" || fail "verify did not name the corrupt chunk"
ok vmc img verify --repair-from replica.qcow2 t.qcow2
ok vmc img verify t.qcow2
ok vmc img io -f qcow2 c.qcow2 -c 'read -P 0x71 0 4096' -c 'read -P 0x11 4096 4096' -c 'read -P 0x71 8192 1040384' -c 'read -P 0x71 1114112 7274496'
qemu_same t.qcow2 t.raw qcow2 raw

# damaged metadata: a data cluster's L2 entry zeroed (it now reads as a
# hole) is detected like damaged data, although that chunk is not hashed
# (chunks that read as zeros by their metadata compare with the zero
# chunk's digest); a hole of the template still reads fine
cp replica.qcow2 meta.qcow2; cp replica.qcow2.seal meta.qcow2.seal; chmod u+w meta.qcow2
qcow2_patch meta.qcow2 l2_entry=20:0
chmod 444 meta.qcow2
ok vmc img create -q -f qcow2 -b meta.qcow2 -F qcow2 mc.qcow2
ok vmc img io -f qcow2 mc.qcow2 -c 'read -P 0 12M 64k' -c 'read -P 0x71 0 64k'
expect_fail vmc img io -f qcow2 mc.qcow2 -c 'read 1280k 4k'
err_matches "meta.qcow2.*damaged.*offset 1310720"

# a replica with another seal is refused
qemu-img create -q -f qcow2 other.qcow2 32M
ok vmc img seal other.qcow2
printf 'Y' | dd of=t.qcow2 bs=1 seek=$((off + 100000)) conv=notrunc status=none
expect_fail vmc img verify --repair-from other.qcow2 t.qcow2
err_matches "same seal"
ok vmc img verify --repair-from replica.qcow2 t.qcow2

# clones made by every path that writes a backing reference
ok vmc img clone --linked -q t.qcow2 lc.qcow2
ok vmc img clone --linked -q t.qcow2 'lm%d.qcow2' --count 2
ok vmc img create -q -f qcow2 -u -b t.qcow2 -F qcow2 uc.qcow2 32M
raw_of t.qcow2 full.raw
ok vmc img convert -f raw -O qcow2 full.raw full.qcow2
ok vmc img io -f qcow2 full.qcow2 -c 'write -P 0x13 64k 4k'
ok vmc img relink full.qcow2 -b t.qcow2 -F qcow2
qemu-img create -q -f qcow2 plain.qcow2 32M
ok vmc img create -q -f qcow2 -b plain.qcow2 -F qcow2 rb.qcow2
ok vmc img rebase -b t.qcow2 -F qcow2 rb.qcow2
ok vmc img clone --linked -q t.qcow2 mid.qcow2
ok vmc img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
ok vmc img io -f qcow2 mid.qcow2 -c 'write -P 0x14 0 64k'
ok vmc img consolidate -q --method new-layer --no-scan top.qcow2
for f in lc lm1 lm2 uc full top; do
    ok vmc img io -f qcow2 $f.qcow2 -c 'read -P 0x71 1M 4k'
done
ok vmc img io -f qcow2 rb.qcow2 -c 'read -P 0 0 8M'   # safe rebase: same view

# template changed and re-sealed: the old clone refuses to open
ok vmc img unseal t.qcow2
[ ! -e t.qcow2.seal ] || fail "unseal left the sidecar"
ok vmc img io -f qcow2 t.qcow2 -c 'write -P 0x99 0 512'
ok vmc img seal t.qcow2
expect_fail vmc img io -f qcow2 c.qcow2 -c 'read 0 512'
err_matches "c.qcow2.*t.qcow2.*re-sealed"
for f in lc lm1 lm2 uc full rb top; do
    expect_fail vmc img io -f qcow2 $f.qcow2 -c 'read 0 512'
    err_matches "re-sealed"
done
# the user vouches for the new template: rebase -u records its seal
ok vmc img rebase -u -b t.qcow2 -F qcow2 lc.qcow2
ok vmc img io -f qcow2 lc.qcow2 -c 'read -P 0x99 0 512'
qemu_check lc.qcow2
# onto an unsealed base (safe mode reads the old chain: -u first here)
ok vmc img rebase -u -b plain.qcow2 -F qcow2 lm1.qcow2
ok vmc img io -f qcow2 lm1.qcow2 -c 'read -P 0 0 512'
qemu_check lm1.qcow2
# removing the sidecar of a sealed qcow2 template is detected
mv t.qcow2.seal t.seal.bak
expect_fail vmc img info --backing-chain c.qcow2
err_matches "seal file.*missing"
mv t.seal.bak t.qcow2.seal

# raw template
mkpattern r.raw $((4 << 20))
cp r.raw r-replica.raw
ok vmc img seal -f raw r.raw
ok vmc img seal -f raw r-replica.raw
ok vmc img create -q -f qcow2 -b r.raw -F raw rc.qcow2
ok vmc img io -f qcow2 rc.qcow2 -c 'read 0 4M'
chmod u+w r.raw
printf 'Z' | dd of=r.raw bs=1 seek=3000000 conv=notrunc status=none
expect_fail vmc img io -f qcow2 rc.qcow2 -c 'read 2M 2M'
err_matches "r.raw.*damaged"
ok vmc img verify --repair-from r-replica.raw r.raw
cmp -s r.raw r-replica.raw || fail "raw repair did not restore the bytes"
qemu_check rc.qcow2

# a layer over a sealed base (what a freeze seals, src/catalog/freeze.c):
# the chunks it reads from its base take the base's recorded digests and
# are not read: sealing it works even over a base chunk damaged meanwhile,
# and its seal keeps the base's original content, so a read of that chunk
# through the layer still fails; the layer's own chunks are hashed
qemu-img create -q -f qcow2 lb.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x41 0 16M' lb.qcow2 > /dev/null
raw_of lb.qcow2 lb0.raw
ok vmc img seal lb.qcow2
ok vmc img create -q -f qcow2 -b lb.qcow2 -F qcow2 ll.qcow2
ok vmc img io -f qcow2 ll.qcow2 -c 'write -P 0x42 1M 64k'
qemu-io -f raw -c 'write -P 0x42 1M 64k' lb0.raw > /dev/null
off=$(qemu-img map --output=json lb.qcow2 | python3 -c 'import json, sys
m = [m for m in json.load(sys.stdin) if m["data"] and m["start"] <= (8 << 20) < m["start"] + m["length"]][0]
print(m["offset"] + (8 << 20) - m["start"])')
chmod u+w lb.qcow2
printf 'Z' | dd of=lb.qcow2 bs=1 seek="$off" conv=notrunc status=none
chmod a-w lb.qcow2
ok vmc img seal --json ll.qcow2 > ll.json
[ "$(stat -c %a ll.qcow2)" = 444 ] || fail "the sealed layer is not mode 0444"
# its root is the one of the guest view as it was: the same as a flat
# image of that content, sealed by hashing every chunk
qemu-img convert -f raw -O qcow2 lb0.raw flat.qcow2
ok vmc img seal --json flat.qcow2 > flat.json
python3 - ll.json flat.json <<'PY' || fail "the layer's seal is not the seal of its original content: $(cat ll.json flat.json)"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a["root"] == b["root"] and a["chunks"] == b["chunks"] == 256, (a, b)
PY
expect_fail vmc img io -r -f qcow2 ll.qcow2 -c 'read 8M 64k'
err_matches "damaged"
ok vmc img io -r -f qcow2 ll.qcow2 -c 'read -P 0x42 1M 64k'
note "ok"
