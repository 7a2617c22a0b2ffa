#!/bin/bash
# convert: full clones and exports made by `vm-clone img convert` pass
# `qemu-img check`, read identical to the source and to the reference
# qemu-img produces with the same options (plain, -c zlib/zstd, -B, -S 0,
# -n, -o cluster_size/compat, raw import), and keep holes sparse.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

qio() { qemu-io -f qcow2 "$@" >/dev/null || fail "qemu-io $* failed"; }
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get(sys.argv[1], ""))' "$1"; }

# source: b <- m <- t, data, zero clusters over data, a shorter base
qemu-img create -q -f qcow2 b.qcow2 24M
qio -c 'write -P 0xb0 0 4M' -c 'write -P 0xb1 10M 2M' b.qcow2
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 m.qcow2 32M
qio -c 'write -P 0xc0 1M 1M' -c 'write -z 10M 512k' -c 'write -P 0xc1 30M 100k' m.qcow2
qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 t.qcow2
qio -c 'write -P 0xd0 3000 5000' -c 'write -z -u 1M 64k' -c 'discard 2M 1M' t.qcow2
raw_of t.qcow2 t.raw

# full clone: no backing, same guest view, as sparse as qemu-img's
ok vmc img convert -f qcow2 -O qcow2 t.qcow2 full.qcow2
qemu_check full.qcow2
qemu_same full.qcow2 t.raw
qemu-img convert -f qcow2 -O qcow2 t.qcow2 ref.qcow2
qemu_same full.qcow2 ref.qcow2 qcow2 qcow2
[ -z "$(qemu-img info -f qcow2 --output=json full.qcow2 | jget backing-filename)" ] ||
    fail "the full clone still has a backing file"
ours=$(du -k full.qcow2 | cut -f1); ref=$(du -k ref.qcow2 | cut -f1)
[ "$ours" -le $((ref * 5 / 4 + 1024)) ] || fail "full clone uses $ours KiB, qemu-img's $ref KiB: holes were filled"
qemu_map full.qcow2 > o.map; qemu_map ref.qcow2 > q.map
diff -u q.map o.map >&2 || fail "full clone allocation differs from qemu-img convert's"

# -S 0: everything written
ok vmc img convert -S 0 -f qcow2 -O qcow2 t.qcow2 dense.qcow2
qemu_check dense.qcow2
qemu_same dense.qcow2 t.raw
qemu-img map -f qcow2 --output=json dense.qcow2 | map_filter > d.map
grep -q ' false ' d.map && grep -q 'true false false' d.map &&
    fail "-S 0 left unallocated ranges: $(head -3 d.map)"

# compressed: zlib (default) and zstd
for ct in zlib zstd; do
    ok vmc img convert -c -f qcow2 -O qcow2 -o compression_type=$ct t.qcow2 c-$ct.qcow2
    qemu_check c-$ct.qcow2
    qemu_same c-$ct.qcow2 t.raw
    [ "$(qemu-img info -f qcow2 --output=json c-$ct.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["format-specific"]["data"]["compression-type"])')" = $ct ] ||
        fail "-o compression_type=$ct not recorded"
    n=$(qemu-img check -f qcow2 --output=json c-$ct.qcow2 | jget compressed-clusters)
    [ "${n:-0}" -gt 0 ] || fail "convert -c ($ct) wrote no compressed cluster"
    # QEMU can write into our compressed image afterwards
    qemu-io -f qcow2 -c 'write -P 0xee 3000 100' c-$ct.qcow2 >/dev/null || fail "qemu-io cannot write our compressed image"
    qemu_check c-$ct.qcow2
done

# -B: an overlay of m holding only what t's top layer holds
ok vmc img convert -f qcow2 -O qcow2 -B m.qcow2 -F qcow2 t.qcow2 tb.qcow2
qemu_check tb.qcow2
qemu_same tb.qcow2 t.raw
[ "$(qemu-img info -f qcow2 --output=json tb.qcow2 | jget backing-filename)" = m.qcow2 ] ||
    fail "-B m.qcow2 not recorded as the backing file"
qemu_map t.qcow2 > q.map; qemu_map tb.qcow2 > o.map
diff -u q.map o.map >&2 || fail "-B result's allocation differs from the source's"

# -n into an existing target with other options
qemu-img create -q -f qcow2 -o cluster_size=4096 pre.qcow2 32M
ok vmc img convert -n -f qcow2 -O qcow2 t.qcow2 pre.qcow2
qemu_check pre.qcow2
qemu_same pre.qcow2 t.raw
qemu-img create -q -f qcow2 small.qcow2 1M
expect_fail vmc img convert -n -f qcow2 -O qcow2 t.qcow2 small.qcow2

# -o cluster_size / compat / extended_l2 on the target
for o in cluster_size=512 cluster_size=2M compat=0.10 extended_l2=on refcount_bits=1; do
    ok vmc img convert -f qcow2 -O qcow2 -o $o t.qcow2 o.qcow2
    qemu_check o.qcow2
    qemu_same o.qcow2 t.raw
    rm -f o.qcow2
done

# raw -> qcow2 (import) and qcow2 -> raw (export)
ok vmc img convert -f raw -O qcow2 t.raw imp.qcow2
qemu_check imp.qcow2
qemu_same imp.qcow2 t.raw
ok vmc img convert -f qcow2 -O raw imp.qcow2 exp.raw
same_bytes exp.raw t.raw
# progress output does not change the result
ok vmc img convert -p -f qcow2 -O qcow2 t.qcow2 prog.qcow2 > /dev/null
qemu_same prog.qcow2 t.raw

# a compressed source (made by qemu-img) converts back to plain
qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd t.raw qz.qcow2
ok vmc img convert -f qcow2 -O qcow2 qz.qcow2 unz.qcow2
qemu_check unz.qcow2
qemu_same unz.qcow2 t.raw
note "ok"
