#!/bin/bash
# make-corpus.sh - regenerate the seed corpus for fuzz-qcow2-open from
# qemu-img/qemu-io (tiny images, mostly 512-byte clusters), plus mutants
# of the header fields QEMU validates.  The output is committed; run this
# only to refresh it:   tests/fuzz/make-corpus.sh tests/fuzz/corpus/qcow2-open
set -eu
out=${1:?usage: make-corpus.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
patch="python3 $here/../helpers/qcow2-patch.py"
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

qi() { qemu-io -f qcow2 "$@" >/dev/null; }
mk() { # name opts size [qemu-io commands...]
    local name=$1 opts=$2 size=$3; shift 3
    qemu-img create -q -f qcow2 -o "$opts" "$name" "$size"
    local c=()
    for x in "$@"; do c+=(-c "$x"); done
    [ ${#c[@]} = 0 ] || qi "${c[@]}" "$name"
    cp "$name" "$out/$name"
}

mk empty-v3.qcow2 cluster_size=512 64k
mk empty-v2.qcow2 cluster_size=512,compat=0.10 64k
mk data-v3.qcow2 cluster_size=512 64k 'write -P 0x11 0 1536' 'write -P 0x22 5000 700'
mk data-v2.qcow2 cluster_size=512,compat=0.10 64k 'write -P 0x33 512 1024'
mk zero.qcow2 cluster_size=512 64k 'write -P 0x44 0 4096' 'write -z 1024 2048' 'write -z -u 3072 512'
mk discard.qcow2 cluster_size=512 64k 'write -P 0x55 0 4096' 'discard 1024 1024'
for rb in 1 2 4 8 32 64; do
    mk refcount$rb.qcow2 cluster_size=512,refcount_bits=$rb 32k 'write -P 0x66 0 1024'
done
mk c4k.qcow2 cluster_size=4096 32k 'write -P 0x77 100 5000'
truncate -s 1M b.raw
mk backing-raw.qcow2 cluster_size=512,backing_file=b.raw,backing_fmt=raw 1M 'write -P 0x88 8192 512'
qemu-img create -q -f qcow2 -o cluster_size=512 b.qcow2 64k
mk backing-qcow2.qcow2 cluster_size=512,backing_file=b.qcow2,backing_fmt=qcow2 64k 'write -P 0x99 0 512'
mk snapshot.qcow2 cluster_size=512 32k 'write -P 0xaa 0 1024'
qemu-img snapshot -c snap1 snapshot.qcow2; qi -c 'write -P 0xbb 0 512' snapshot.qcow2
cp snapshot.qcow2 "$out/snapshot.qcow2"
# compressed clusters, zlib and zstd
head -c 8192 /dev/zero | tr '\0' 'x' > text.raw
for ct in zlib zstd; do
    qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096,compression_type=$ct text.raw comp-$ct.qcow2
    cp comp-$ct.qcow2 "$out/"
done
# extended L2 (subclusters): smallest allowed cluster size is 16k
mk extl2.qcow2 cluster_size=16384,extended_l2=on 64k 'write -P 0xcc 1024 2048' 'write -z 8192 1024'
# a dirty image (lazy refcounts, process aborted)
qemu-img create -q -f qcow2 -o cluster_size=512,lazy_refcounts=on dirty.qcow2 32k
qemu-io -f qcow2 -c 'write -P 1 0 512' -c abort dirty.qcow2 >/dev/null 2>&1 || true
cp dirty.qcow2 "$out/"

# header mutants (QEMU's sanity limits)
m() { local name=$1; shift; cp data-v3.qcow2 "$out/$name"; $patch "$out/$name" "$@"; }
m bad-cluster-bits-8.qcow2 cluster_bits=8
m bad-cluster-bits-22.qcow2 cluster_bits=22
m bad-header-length-100.qcow2 header_length=100
m bad-header-length-big.qcow2 header_length=4096
m bad-l1-size.qcow2 l1_size=0x10000000
m bad-l1-offset.qcow2 l1_table_offset=0xffffffffffff0000
m bad-refcount-order-7.qcow2 refcount_order=7
m bad-refcount-table.qcow2 refcount_table_clusters=0x100000
m bad-incompat.qcow2 incompatible_features=0x20
m bad-encrypted.qcow2 crypt_method=1
m bad-version-1.qcow2 version=1
m bad-version-4.qcow2 version=4
m bad-size-huge.qcow2 size=0x7fffffffffffff00
m bad-snapshots.qcow2 nb_snapshots=70000
m bad-backing-long.qcow2 backing_len=1024
m self-backing.qcow2 backing=img.qcow2
head -c 72 data-v3.qcow2 > "$out/truncated-72.qcow2"
head -c 103 data-v3.qcow2 > "$out/truncated-103.qcow2"
ls -l "$out" | awk '{s+=$5} END {print NR-1 " files, " s " bytes"}'
