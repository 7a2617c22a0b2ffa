#!/bin/bash
# info: `vm-clone img info` reports what `qemu-img info` reports for the
# fields a caller relies on (JSON keys and values, --backing-chain, and
# the main human-readable lines).
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

KEYS='format virtual-size cluster-size backing-filename backing-filename-format dirty-flag
format-specific.type format-specific.data.compat format-specific.data.compression-type
format-specific.data.lazy-refcounts format-specific.data.refcount-bits
format-specific.data.corrupt format-specific.data.extended-l2'

# pick KEYS from one ImageInfo object (or each object of an array)
pick() {
    python3 -c '
import json, sys
keys = sys.argv[1].split()
v = json.load(sys.stdin)
for obj in (v if isinstance(v, list) else [v]):
    for k in keys:
        x = obj
        for p in k.split("."):
            x = x.get(p) if isinstance(x, dict) else None
        print("%s=%s" % (k, json.dumps(x)))
    print("--")' "$KEYS"
}

same_info() {
    local img=$1; shift
    note "info $* $img"
    qemu-img info "$@" --output=json "$img" | pick > q.info || fail "qemu-img info $img failed"
    vmc img info "$@" --output=json "$img" > o.json || fail "vm-clone img info $img failed"
    pick < o.json > o.info || fail "vm-clone img info: not JSON"
    diff -u q.info o.info >&2 || fail "info $* $img differs from qemu-img's (- qemu, + ours)"
}

same_human_lines() {
    local img=$1 re='^(image|file format|virtual size|cluster_size|backing file format):'
    qemu-img info "$img" | grep -E "$re" > q.txt
    vmc img info "$img" | grep -E "$re" > o.txt || fail "vm-clone img info $img failed"
    diff -u q.txt o.txt >&2 || fail "human info of $img differs (- qemu, + ours)"
}

qemu-img create -q -f qcow2 plain.qcow2 64M
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 v2.qcow2 1G
qemu-img create -q -f qcow2 -o extended_l2=on,compression_type=zstd,refcount_bits=8 x.qcow2 3M
qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 4M
qemu-io -f qcow2 -c 'write 0 4k' -c abort lazy.qcow2 >/dev/null 2>&1
mkdir -p base vm
qemu-img create -q -f qcow2 base/b.qcow2 16M
qemu-img create -q -f qcow2 -b ../base/b.qcow2 -F qcow2 vm/m.qcow2
qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 vm/t.qcow2 32M
truncate -s 1M r.raw

for img in plain.qcow2 v2.qcow2 x.qcow2 lazy.qcow2 base/b.qcow2 vm/m.qcow2 vm/t.qcow2; do
    same_info $img -f qcow2
    same_human_lines $img
done
same_info r.raw -f raw
same_info vm/t.qcow2 -f qcow2 --backing-chain
# info does not open the backing chain: a missing base is not an error
qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 1M
same_info orphan.qcow2 -f qcow2
# ... but --backing-chain does
expect_fail vmc img info -f qcow2 --backing-chain orphan.qcow2
expect_fail vmc img info -f qcow2 missing.qcow2
note "ok"
