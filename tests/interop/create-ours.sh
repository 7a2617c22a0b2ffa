#!/bin/bash
# create-ours: images WE create, with every create option, stay valid for
# QEMU after writes through `vm-clone img io`: `qemu-img check` exits 0
# and the guest view equals a raw shadow that qemu-io wrote with the same
# commands.  Also checks that the header says what was asked for.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

# qinfo IMG KEY: a field of `qemu-img info --output=json` (dotted path)
qinfo() {
    qemu-img info -f qcow2 --output=json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else str(v).lower())' "$2"
}

# exercise IMG CS SIZE [BASE]: write through ours, mirror into a raw
# shadow through qemu-io, then check + compare.
exercise() {
    local img=$1 cs=$2 size=$3 base=${4:-}
    local c=(
        -c "write -P 0x11 0 $((cs + 1000))"                  # cross-cluster, partial
        -c "write -P 0x22 $((cs * 3 + 7)) 5000"              # unaligned, inside/across
        -c "write -P 0x33 $((cs * 6)) $((cs * 3))"           # whole clusters
        -c "write -z $((cs * 6 + cs / 2)) $((cs + 100))"     # zeroes, partial + cross
        -c "write -z -u $((cs * 8)) $cs"                     # zeroes may unmap
        -c "discard $((cs * 10)) $((cs * 2))"                # cluster-aligned discard
        -c "write -P 0x44 $((size - 3000)) 3000"             # at the very end
        -c "flush"
    )
    rm -f shadow.raw
    if [ -n "$base" ]; then
        raw_of "$base" shadow.raw
        truncate -s "$size" shadow.raw
    else
        truncate -s "$size" shadow.raw
    fi
    ok vmc img io -f qcow2 "$img" "${c[@]}"
    qemu-io -f raw "${c[@]}" shadow.raw >/dev/null || fail "qemu-io on the shadow failed"
    qemu_check "$img"
    qemu_same "$img" shadow.raw
    # and our reader agrees with QEMU's
    ok vmc img compare -f qcow2 -F raw "$img" shadow.raw
    # read-back through our io tool
    ok vmc img io -f qcow2 "$img" -c "read -P 0x33 $((cs * 6)) $((cs / 2))" \
        -c "read -P 0 $((cs * 6 + cs / 2)) $((cs + 100))"
}

for cs in 512 1024 4096 65536 131072 2097152; do
    size=$((cs * 16 > 8 * 1024 * 1024 ? cs * 16 : 8 * 1024 * 1024))
    note "cluster_size=$cs"
    rm -f p.qcow2
    ok vmc img create -f qcow2 -o cluster_size=$cs p.qcow2 $size
    [ "$(qinfo p.qcow2 cluster-size)" = $cs ] || fail "cluster_size=$cs not recorded"
    [ "$(qinfo p.qcow2 virtual-size)" = $size ] || fail "size $size not recorded"
    qemu_check p.qcow2
    exercise p.qcow2 $cs $size
done

note "compat 0.10 and 1.1"
for compat in 0.10 1.1; do
    rm -f c.qcow2
    ok vmc img create -f qcow2 -o compat=$compat c.qcow2 8M
    [ "$(qinfo c.qcow2 format-specific.data.compat)" = $compat ] || fail "compat=$compat not recorded"
    exercise c.qcow2 65536 $((8 << 20))
done
# v2 cannot express these: must be refused like qemu-img does
expect_fail vmc img create -f qcow2 -o compat=0.10,extended_l2=on bad.qcow2 8M
expect_fail vmc img create -f qcow2 -o compat=0.10,compression_type=zstd bad.qcow2 8M
expect_fail vmc img create -f qcow2 -o compat=0.10,refcount_bits=8 bad.qcow2 8M
expect_fail vmc img create -f qcow2 -o cluster_size=768 bad.qcow2 8M
expect_fail vmc img create -f qcow2 -o cluster_size=256 bad.qcow2 8M
expect_fail vmc img create -f qcow2 -o cluster_size=4M bad.qcow2 8M

note "extended_l2"
for cs in 16384 65536 131072; do
    rm -f e.qcow2
    ok vmc img create -f qcow2 -o extended_l2=on,cluster_size=$cs e.qcow2 8M
    [ "$(qinfo e.qcow2 format-specific.data.extended-l2)" = true ] || fail "extended_l2 not set"
    exercise e.qcow2 $cs $((8 << 20))
done

note "refcount_bits"
for rb in 1 2 4 8 16 32 64; do
    rm -f r.qcow2
    ok vmc img create -f qcow2 -o refcount_bits=$rb,cluster_size=4096 r.qcow2 8M
    [ "$(qinfo r.qcow2 format-specific.data.refcount-bits)" = $rb ] || fail "refcount_bits=$rb not recorded"
    exercise r.qcow2 4096 $((8 << 20))
done
expect_fail vmc img create -f qcow2 -o refcount_bits=128 bad.qcow2 8M
expect_fail vmc img create -f qcow2 -o refcount_bits=3 bad.qcow2 8M

note "compression_type=zstd"
rm -f z.qcow2
ok vmc img create -f qcow2 -o compression_type=zstd z.qcow2 8M
[ "$(qinfo z.qcow2 format-specific.data.compression-type)" = zstd ] || fail "zstd not recorded"
exercise z.qcow2 65536 $((8 << 20))

note "preallocation"
for pa in metadata falloc full; do
    rm -f pa.qcow2
    ok vmc img create -f qcow2 -o preallocation=$pa pa.qcow2 4M
    qemu_check pa.qcow2
    exercise pa.qcow2 65536 $((4 << 20))
done

note "linked clones (create -b -F), every cluster size"
qemu-img create -q -f qcow2 base.qcow2 40M
qemu-io -f qcow2 -c 'write -P 0xb1 0 3M' -c 'write -P 0xb2 5M 2M' -c 'write -z 1M 64k' \
    -c 'write -P 0xb3 20M 5M' base.qcow2 >/dev/null
base_sum=$(sha base.qcow2)
for cs in 512 4096 65536 2097152; do
    rm -f l.qcow2
    ok vmc img create -f qcow2 -o cluster_size=$cs -b base.qcow2 -F qcow2 l.qcow2
    [ "$(qinfo l.qcow2 backing-filename)" = base.qcow2 ] || fail "backing name not stored verbatim"
    [ "$(qinfo l.qcow2 backing-filename-format)" = qcow2 ] || fail "backing format not recorded"
    [ "$(qinfo l.qcow2 virtual-size)" = $((40 << 20)) ] || fail "clone size is not the base's"
    qemu_check l.qcow2
    qemu_same l.qcow2 base.qcow2 qcow2 qcow2
    exercise l.qcow2 $cs $((40 << 20)) base.qcow2
done
[ "$(sha base.qcow2)" = "$base_sum" ] || fail "the base changed while its clones were written"

# a bigger clone than its base, and an extended-L2 clone
rm -f l.qcow2
ok vmc img create -f qcow2 -o extended_l2=on,cluster_size=131072 -b base.qcow2 -F qcow2 l.qcow2 48M
exercise l.qcow2 131072 $((48 << 20)) base.qcow2
# -b without -F is refused (the format is never probed); missing base too
expect_fail vmc img create -f qcow2 -b base.qcow2 nf.qcow2
expect_fail vmc img create -f qcow2 -b missing.qcow2 -F qcow2 nf.qcow2
# -u: the base is not opened, so a size is needed
ok vmc img create -f qcow2 -u -b missing.qcow2 -F qcow2 u.qcow2 1M
[ "$(qinfo u.qcow2 backing-filename)" = missing.qcow2 ] || fail "-u did not store the name"
[ "$(sha base.qcow2)" = "$base_sum" ] || fail "the base changed"
note "ok"
