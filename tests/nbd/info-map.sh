#!/bin/bash
# info-map: what NBD clients see of a linked clone served by vm-clone serve.
#  - nbdinfo: protocol, size, flags (flush, fua, trim, zero, fast-zero,
#    multi-conn, cache, df), block sizes, both metadata contexts;
#  - nbdinfo --list lists every export (and the default one with a single
#    target); qemu-nbd --list agrees on the flags;
#  - nbdinfo --map (base:allocation) and --map=qemu:allocation-depth agree
#    with `vm-clone img map` of the same chain, over qcow2 and raw bases;
#  - qemu-img map on the NBD URI agrees with qemu-img map of the file.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires qemu-io --version
requires python3 -c 'import json'

# template: 8 MiB of data, a zero cluster at 8 MiB; clone: writes at 4 MiB
# and 32 MiB, a zeroed range over base data at 6 MiB
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0xaa 0 8M' -c 'write -z 8M 1M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 clone.qcow2
qemu-io -f qcow2 -c 'write -P 0x55 4M 1M' -c 'write -P 0x11 32M 1M' \
    -c 'write -z 6M 512k' clone.qcow2 >/dev/null
# a raw template with holes, and a clone of it
truncate -s 16M rbase.raw
qemu-io -f raw -c 'write -P 0x33 1M 2M' -c 'write -P 0x34 12M 64k' rbase.raw >/dev/null
qemu-img create -q -f qcow2 -b rbase.raw -F raw rclone.qcow2
qemu-io -f qcow2 -c 'write -P 0x35 2M 64k' -c 'write -z 1536k 64k' rclone.qcow2 >/dev/null

# expected maps, from our own map (taken before the server locks the files)
for img in clone rclone; do
    vmc img map -f qcow2 --output=json $img.qcow2 > $img.map.json || fail "img map $img"
done

serve s clone.qcow2 rclone.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 single.qcow2
serve one single.qcow2

# ---- handshake / metadata
nbdinfo "$(uri s clone.qcow2)" > info.txt || fail "nbdinfo failed"
grep -q 'newstyle-fixed.*structured' info.txt || fail "no structured replies: $(head -1 info.txt)"
nbdinfo --json "$(uri s clone.qcow2)" > info.json || fail "nbdinfo --json failed"
python3 - info.json <<'PY' || fail "nbdinfo --json: unexpected export properties"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
want = {"export-size": 64 << 20, "is_read_only": False, "can_flush": True,
        "can_fua": True, "can_trim": True, "can_zero": True,
        "can_fast_zero": True, "can_multi_conn": True, "can_cache": True,
        "can_df": True, "block_size_minimum": 1,
        "block_size_preferred": 65536, "block_size_maximum": 32 << 20}
for k, v in want.items():
    assert e.get(k) == v, (k, e.get(k), v)
assert set(e["contexts"]) == {"base:allocation", "qemu:allocation-depth"}, e["contexts"]
PY
nbdinfo --list "nbd+unix:///?socket=$T/s.sock" > list.txt || fail "nbdinfo --list failed"
grep -q 'export="clone.qcow2"' list.txt || fail "--list misses clone.qcow2"
grep -q 'export="rclone.qcow2"' list.txt || fail "--list misses rclone.qcow2"
# two targets: no default export
if nbdinfo --size "$(uri s)" >/dev/null 2>&1; then
    fail "a default export exists with two targets"
fi
# one target: the default export "" is that target
[ "$(nbdinfo --size "$(uri one)")" = $((64 << 20)) ] || fail "default export size"
[ "$(nbdinfo --size "$(uri one single.qcow2)")" = $((64 << 20)) ] || fail "named export size"
if command -v qemu-nbd >/dev/null; then
    qemu-nbd --list -k "$T/s.sock" > qlist.txt || fail "qemu-nbd --list failed"
    grep -q 'flags: 0xded ( flush fua trim zeroes df multi cache fast-zero )' qlist.txt ||
        fail "qemu-nbd --list flags: $(grep flags: qlist.txt | head -1)"
    grep -q 'min block: 1' qlist.txt || fail "qemu-nbd --list: block sizes"
fi

# ---- maps: nbdinfo --map vs vm-clone img map
for img in clone rclone; do
    nbdinfo --map "$(uri s $img.qcow2)" > $img.base.txt || fail "nbdinfo --map $img"
    nbdinfo --map=qemu:allocation-depth "$(uri s $img.qcow2)" > $img.depth.txt ||
        fail "nbdinfo --map=qemu:allocation-depth $img"
    python3 - $img.map.json $img.base.txt $img.depth.txt <<'PY' || fail "map of $img over NBD differs from vm-clone img map"
import json, sys
m = json.load(open(sys.argv[1]))
def merge(ext):
    out = []
    for s, l, v in ext:
        if out and out[-1][2] == v and out[-1][0] + out[-1][1] == s:
            out[-1][1] += l
        else:
            out.append([s, l, v])
    return out
base = merge([(e["start"], e["length"],
               (0 if e["data"] else 1) | (2 if e["zero"] else 0)) for e in m])
depth = merge([(e["start"], e["length"],
                e["depth"] + 1 if e["present"] else 0) for e in m])
def nbdmap(path):
    return merge([tuple(int(x) for x in l.split()[:3]) for l in open(path)])
got_b, got_d = nbdmap(sys.argv[2]), nbdmap(sys.argv[3])
assert got_b == base, ("base:allocation", got_b, base)
assert got_d == depth, ("qemu:allocation-depth", got_d, depth)
PY
done
# spot checks of the layering (1 = clone, 2 = template, 0 = nowhere)
grep -qE '^ +4194304 +1048576 +1 ' clone.depth.txt || fail "clone's own cluster is not depth 1"
grep -qE '^ +6291456 +524288 +1 ' clone.depth.txt || fail "zeroed range is not local"
grep -qE '^ +0 +4194304 +2 ' clone.depth.txt || fail "template data is not depth 2"

# ---- qemu-img map through NBD equals qemu-img map of the file (data/zero)
qemu-img map -f raw --output=json "$(uri s clone.qcow2)" > nbd.qmap.json || fail "qemu-img map on NBD"
python3 - nbd.qmap.json clone.map.json <<'PY' || fail "qemu-img map over NBD disagrees with the file's map"
import json, sys
def norm(ext):
    out = []
    for e in ext:
        # NBD flattens the chain: only data/zero survive
        v = (bool(e["data"]), bool(e["zero"]))
        if out and out[-1][2] == v:
            out[-1][1] += e["length"]
        else:
            out.append([e["start"], e["length"], v])
    return out
a, b = norm(json.load(open(sys.argv[1]))), norm(json.load(open(sys.argv[2])))
assert a == b, (a, b)
PY
server_alive s
stop_server s
stop_server one
