#!/bin/bash
# make-vmdk-corpus.sh - regenerate the seed corpus of fuzz-vmdk from
# qemu-img/qemu-io (small images) and a few text descriptors naming the
# files the target keeps next to its input (e.vmdk, f.raw, base.vmdk).
# The output is committed; run this only to refresh it:
#   tests/fuzz/make-vmdk-corpus.sh tests/fuzz/corpus/vmdk
set -eu
out=${1:?usage: make-vmdk-corpus.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

qemu-img create -q -f vmdk sparse-empty.vmdk 256k
qemu-img create -q -f vmdk sparse-data.vmdk 200k
qemu-io -f vmdk -c 'write -P 0x11 4k 8k' -c 'write -P 0x22 130k 70k' sparse-data.vmdk >/dev/null
qemu-img create -q -f vmdk -o zeroed_grain=on zeroed.vmdk 256k
qemu-io -f vmdk -c 'write -P 0x33 0 64k' -c 'write -z 64k 64k' zeroed.vmdk >/dev/null
qemu-img create -q -f raw src.raw 200k
qemu-io -f raw -c 'write -P 0x44 0 70k' src.raw >/dev/null
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk
qemu-img create -q -f vmdk base.vmdk 256k
qemu-img create -q -f vmdk -b base.vmdk -F vmdk delta.vmdk
qemu-io -f vmdk -c 'write -P 0x55 0 4k' delta.vmdk >/dev/null
# the footer form of a stream-optimized file (GD_AT_END in the header)
python3 - <<'PY'
import struct
t = bytearray(open('stream.vmdk', 'rb').read())
t += bytes(-len(t) % 512)
hdr = bytes(t[:512])
struct.pack_into('<Q', t, 56, 2**64 - 1)
m = bytearray(512)
struct.pack_into('<QII', m, 0, 1, 0, 3)
open('stream-footer.vmdk', 'wb').write(bytes(t + m + hdr + bytes(512)))
PY
cp sparse-empty.vmdk sparse-data.vmdk zeroed.vmdk stream.vmdk delta.vmdk \
    stream-footer.vmdk "$out/"
desc() {        # desc NAME CREATE-TYPE EXTENT-LINE...
    local name=$1 type=$2
    shift 2
    { printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
      printf 'createType="%s"\n\n# Extent description\n' "$type"
      printf '%s\n' "$@"
      printf '\n# The Disk Data Base\n#DDB\n\nddb.adapterType = "ide"\n'; } > "$out/$name"
}
desc desc-flat.vmdk monolithicFlat 'RW 2048 FLAT "f.raw" 0'
desc desc-flat-offset.vmdk twoGbMaxExtentFlat 'RW 1024 FLAT "f.raw" 8' 'RW 1024 FLAT "f.raw" 0'
desc desc-sparse.vmdk twoGbMaxExtentSparse 'RW 2048 SPARSE "e.vmdk"' 'RW 2048 SPARSE "e.vmdk"'
desc desc-zero.vmdk monolithicFlat 'RW 2048 ZERO' 'RDONLY 2048 FLAT "f.raw"'
desc desc-escape.vmdk monolithicFlat 'RW 2048 FLAT "../f.raw" 0'
