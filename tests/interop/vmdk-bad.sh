#!/bin/bash
# vmdk-bad: a header field sweep over VMDK files made by qemu-img, each
# damaged in one field; every one is refused cleanly (exit 1, a message
# that says what is wrong, no crash or sanitizer report: `vmc` turns
# those into failures), never read as zeros or as raw. Sizes near 2^64,
# grain size 0/3/huge, grain tables per directory 0/huge, the grain
# directory at the header or past the end of the file, directory entries
# pointing at the header, the directory itself or past the end, a
# redundant directory that disagrees, grain table entries past the end or
# into the metadata, a damaged stream-optimized footer and grain markers
# (wrong LBA, huge size, bad deflate data), and text descriptors with
# impossible extents. Run in the ASan build too.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

qemu-img create -q -f vmdk sparse.vmdk 5000k || fail "create sparse"
qemu-io -f vmdk -c 'write -P 0x11 0 70k' -c 'write -P 0x44 4990k 10k' sparse.vmdk > /dev/null ||
    fail "qemu-io sparse"
qemu-img create -q -f raw src.raw 5000k
qemu-io -f raw -c 'write -P 0x11 0 70k' src.raw > /dev/null || fail "qemu-io src.raw"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk ||
    fail "convert streamOptimized"
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse split.vmdk 8M || fail "create split"

python3 - <<'EOF' || fail "could not write the damaged images"
import re, struct

def le(fmt, b, off):
    return struct.unpack_from('<' + fmt, b, off)[0]

def put(src, dst, edits):
    b = bytearray(open(src, 'rb').read())
    for off, fmt, val in edits:
        struct.pack_into('<' + fmt, b, off, val)
    open(dst, 'wb').write(bytes(b))

s = open('sparse.vmdk', 'rb').read()
gd = le('Q', s, 56) * 512
rgd = le('Q', s, 48) * 512
gt = le('I', s, gd) * 512
size = len(s)
cases = {
    'cap-max': [(12, 'Q', 2**64 - 1)],
    'cap-huge': [(12, 'Q', 2**55)],
    'grain-0': [(20, 'Q', 0)],
    'grain-3': [(20, 'Q', 3)],
    'grain-huge': [(20, 'Q', 2**40)],
    'gtes-0': [(44, 'I', 0)],
    'gtes-huge': [(44, 'I', 2**32 - 1)],
    'gd-header': [(56, 'Q', 0)],
    'gd-eof': [(56, 'Q', size // 512 + 10)],
    'gd-max': [(56, 'Q', 2**64 - 2)],
    'gde-desc': [(gd, 'I', 1), (rgd, 'I', 1)],
    'gde-self': [(gd, 'I', gd // 512), (rgd, 'I', gd // 512)],
    'gde-eof': [(gd, 'I', size // 512 + 1), (rgd, 'I', size // 512 + 1)],
    'gde-max': [(gd, 'I', 2**32 - 1), (rgd, 'I', 2**32 - 1)],
    'rgd-differs': [(rgd, 'I', 0)],
    'gte-eof': [(gt, 'I', size // 512 + 100)],
    'gte-header': [(gt, 'I', 0 + 2)],
    'gte-max': [(gt, 'I', 2**32 - 1)],
    'desc-huge': [(36, 'Q', 2**63)],
}
for name, edits in cases.items():
    put('sparse.vmdk', 'bad-%s.vmdk' % name, edits)

# qemu-img writes a stream-optimized file with its directory up front; the
# form with the header's copy in a footer (GD_AT_END) is made from it:
# footer marker, header copy, end-of-stream marker in the last sectors.
t = bytearray(open('stream.vmdk', 'rb').read())
t += bytes(-len(t) % 512)
hdr = bytes(t[:512])
struct.pack_into('<Q', t, 56, 2**64 - 1)
marker = bytearray(512)
struct.pack_into('<QII', marker, 0, 1, 0, 3)
t += marker + hdr + bytes(512)
open('footer.vmdk', 'wb').write(bytes(t))
n = len(t)
foot = n - 1024
sgd = le('Q', t, foot + 56) * 512
sgt = le('I', t, sgd) * 512
grain0 = le('I', t, sgt) * 512      # the marker of the first grain
stream = {
    'footer-marker': [(n - 1536 + 12, 'I', 7)],
    'footer-magic': [(foot, 'I', 0)],
    'footer-gd-eof': [(foot + 56, 'Q', n // 512 + 10)],
    'footer-gd-end': [(foot + 56, 'Q', 2**64 - 1)],
    'marker-lba': [(grain0, 'Q', 12345)],
    'marker-size': [(grain0 + 8, 'I', 2**31)],
    'marker-zero': [(grain0 + 8, 'I', 0)],
    'deflate': [(grain0 + 12, 'Q', 0x0123456789abcdef)],
    's-gte-eof': [(sgt, 'I', n // 512 + 100)],
}
for name, edits in stream.items():
    put('footer.vmdk', 'bad-%s.vmdk' % name, edits)

desc = open('split.vmdk').read()
for name, new in [('x-size', 'RW 18446744073709551615 SPARSE'),
                  ('x-bigger', 'RW 99999999 SPARSE'),
                  ('x-type', 'RW 16384 VMFSSPARSE'),
                  ('x-abs', 'RW 16384 FLAT "/etc/passwd" 0 #'),
                  ('x-noaccess', 'NOACCESS 16384 SPARSE')]:
    bad = re.sub(r'RW \d+ SPARSE', new, desc, count=1)
    assert bad != desc
    open('bad-%s.vmdk' % name, 'w').write(bad)
EOF

# Every damaged file: convert fails cleanly (open or read), exit 1.
n=0
for f in bad-*.vmdk; do
    rc=0
    vmc img convert -O raw "$f" out.raw > /dev/null 2> err || rc=$?
    [ "$rc" = 1 ] || fail "$f: exit $rc, expected a clean refusal (1): $(cat err)"
    grep -qE "VMDK|extent|Structure needs cleaning" err || fail "$f: unclear message: $(cat err)"
    note "$f: $(head -c 200 err)"
    n=$((n + 1))
done
[ "$n" -ge 30 ] || fail "only $n damaged images were made"
# the undamaged ones still read
for f in sparse.vmdk stream.vmdk split.vmdk; do
    vmc img convert -O raw "$f" out.raw || fail "the undamaged $f does not read"
done
# the footer form reads like the file it was made from (qemu-img agrees)
qemu-img compare -q -f vmdk -F vmdk stream.vmdk footer.vmdk || fail "qemu-img: footer.vmdk differs"
vmc img convert -O raw footer.vmdk out.raw || fail "footer.vmdk does not read"
cmp out.raw src.raw || fail "footer.vmdk reads wrong"
echo "vmdk-bad: ok ($n damaged images refused)"
