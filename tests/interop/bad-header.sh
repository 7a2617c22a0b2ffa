#!/bin/bash
# bad-header: images with truncated headers, out-of-range fields and
# unsupported features are refused by every command that opens them:
# non-zero exit below 128 (no crash), exactly one line on stderr that
# names the problem, no sanitizer report (lib.sh `vmc`).  Where QEMU
# refuses the same image the test first asserts that qemu-img does too,
# so each mutant is known to be really broken.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

one_line() {
    local n
    n=$(grep -c . "$T/vmc.err" || true)
    [ "$n" = 1 ] || fail "$1: expected one line on stderr, got $n: $(head -c 400 "$T/vmc.err")"
}

# refused IMG REGEX: info, io read, convert and check all refuse IMG
refused() {
    local img=$1 re=$2
    expect_fail vmc img info -f qcow2 "$img";                       one_line "info $img"; err_matches "$re"
    expect_fail vmc img io -f qcow2 "$img" -c 'read 0 512';          one_line "io $img";   err_matches "$re"
    expect_fail vmc img convert -f qcow2 -O raw "$img" out.raw;      one_line "convert $img"
    expect_fail vmc img map -f qcow2 --output=json "$img";           one_line "map $img"
    rm -f out.raw
    local rc=0
    vmc img check -f qcow2 "$img" > /dev/null 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "check $img reported a clean image"
}

qemu_refuses() {
    qemu-img info -f qcow2 "$1" >/dev/null 2>&1 && fail "oracle: qemu-img opens $1 (the mutant is not broken)"
    return 0
}

qemu-img create -q -f qcow2 good.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0x11 0 128k' good.qcow2 >/dev/null

# name | patch ops | error regex
while IFS='|' read -r name ops re; do
    [ -n "$name" ] || continue
    note "$name: $ops"
    cp good.qcow2 "$name.qcow2"
    # shellcheck disable=SC2086
    qcow2_patch "$name.qcow2" $ops
    qemu_refuses "$name.qcow2"
    refused "$name.qcow2" "$re"
done <<'LIST'
bad-magic|magic=0x51464900|qcow2|format|magic
trunc-0|truncate=0|qcow2|format|header|short|truncat|empty
trunc-50|truncate=50|header|short|truncat|read
trunc-103|truncate=103|header|short|truncat|read
cluster-bits-8|cluster_bits=8|cluster
cluster-bits-22|cluster_bits=22|cluster
header-length-100|header_length=100|header
header-length-big|header_length=70000|header
l1-size-huge|l1_size=0x10000000|l1|too large|too big
l1-too-small|l1_size=0|l1|too small
l1-offset-unaligned|l1_table_offset=0x30001|l1|offset|align
refcount-order-7|refcount_order=7|refcount|reference count
reftable-huge|refcount_table_clusters=0x1000000|refcount|reference count
reftable-unaligned|refcount_table_offset=0x10001|refcount|reference count|offset|align
incompat-unknown|incompatible_features=0x20|feature|incompatible|unsupported
incompat-high|incompatible_features=0x8000000000000000|feature|incompatible|unsupported
version-1|version=1|version
version-4|version=4|version
backing-name-1024|backing_len=1024|backing|name|long
snapshots-too-many|nb_snapshots=70000|snapshot
snapshot-offset-bad|nb_snapshots=1 snapshots_offset=0x10001|snapshot
compression-unknown|incompatible_features=0x8 compression_type=2|compression
compression-no-bit|compression_type=1|compression
LIST

# features we refuse (QEMU may read them): one specific message each
note "encryption (luks)"
# (qemu-img's LUKS key setup can fail on a loaded machine: "Unable to get
# accurate CPU usage"; then only the legacy case below runs)
if qemu-img create -q -f qcow2 --object secret,id=s0,data=pw \
        -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 enc.qcow2 4M; then
    expect_fail vmc img io -f qcow2 enc.qcow2 -c 'read 0 512'; one_line "io enc"; err_matches 'encrypt'
    expect_fail vmc img convert -f qcow2 -O raw enc.qcow2 out.raw; one_line "convert enc"; err_matches 'encrypt'
else
    note "qemu-img could not create a LUKS image here; legacy case only"
fi
note "encryption (legacy aes bit)"
cp good.qcow2 aes.qcow2; qcow2_patch aes.qcow2 crypt_method=1
expect_fail vmc img io -f qcow2 aes.qcow2 -c 'read 0 512'; one_line "io aes"; err_matches 'encrypt'
note "external data file"
qemu-img create -q -f qcow2 -o data_file=ext.data ext.qcow2 4M
expect_fail vmc img io -f qcow2 ext.qcow2 -c 'read 0 512'; one_line "io ext"; err_matches 'data.?file|external'
expect_fail vmc img convert -f qcow2 -O raw ext.qcow2 out.raw; one_line "convert ext"

# readable but not writable: corrupt bit, dirty (crash), internal snapshots
# readable IMG: a read-only use (convert) gives what qemu-img reads
readable() {
    rm -f r-ours.raw r-ref.raw
    qemu-img convert -f qcow2 -O raw "$1" r-ref.raw || fail "oracle: qemu-img cannot read $1"
    ok vmc img convert -f qcow2 -O raw "$1" r-ours.raw
    same_bytes r-ours.raw r-ref.raw
}
note "corrupt bit"
cp good.qcow2 corrupt.qcow2; qcow2_patch corrupt.qcow2 incompatible_features=0x2
s=$(sha corrupt.qcow2)
readable corrupt.qcow2
expect_fail vmc img io -f qcow2 corrupt.qcow2 -c 'write -P 1 0 512'; one_line "write corrupt"; err_matches 'corrupt'
[ "$(sha corrupt.qcow2)" = "$s" ] || fail "a refused write modified the corrupt image"
note "dirty (lazy refcounts, crashed)"
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0x22 0 64k' -c abort dirty.qcow2 >/dev/null 2>&1
readable dirty.qcow2
s=$(sha dirty.qcow2)
expect_fail vmc img io -f qcow2 dirty.qcow2 -c 'write -P 1 0 512'; one_line "write dirty"; err_matches 'dirty|repair|check'
[ "$(sha dirty.qcow2)" = "$s" ] || fail "a refused write modified the dirty image"
note "internal snapshots"
cp good.qcow2 snap.qcow2; qemu-img snapshot -c s1 snap.qcow2
s=$(sha snap.qcow2)
readable snap.qcow2
expect_fail vmc img io -f qcow2 snap.qcow2 -c 'write -P 1 0 512'; one_line "write snap"; err_matches 'snapshot'
[ "$(sha snap.qcow2)" = "$s" ] || fail "a refused write modified the image with snapshots"

# never probed: a raw file that looks like qcow2 and is opened as raw is
# served byte for byte (its "backing file" is not opened)
note "raw that looks like qcow2"
qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw looks.img 1M
cp looks.img looks.orig
ok vmc img convert -f raw -O raw looks.img looks.out
qemu-img convert -f raw -O raw looks.img looks.ref
same_bytes looks.out looks.ref          # qemu-img rounds a raw size up to 512
cmp -s -n "$(stat -c %s looks.orig)" looks.out looks.orig || fail "the raw file was not served byte for byte"
note "ok"
