#!/bin/bash
# header-ext: unknown qcow2 header extensions survive our header rewrites
# (rebase -u, seal) byte for byte, and the feature-name table is written.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires python3 --version

qemu-img create -q -f qcow2 b1.qcow2 8M
qemu-img create -q -f qcow2 b2.qcow2 8M
ok vmc img create -q -f qcow2 -b b1.qcow2 -F qcow2 x.qcow2

# insert an unknown extension (type 0x12345678, 13 bytes) before the end
python3 - x.qcow2 <<'PY'
import struct, sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
hl = struct.unpack('>I', d[100:104])[0]
pos, exts = hl, []
while True:
    t, l = struct.unpack('>II', d[pos:pos + 8])
    if t == 0:
        break
    exts.append(bytes(d[pos:pos + 8 + ((l + 7) & ~7)]))
    pos += 8 + ((l + 7) & ~7)
bo, bs = struct.unpack('>QI', d[8:20])
name = bytes(d[bo:bo + bs])
new = b''.join(exts) + struct.pack('>II', 0x12345678, 13) + b'hello, world!' + b'\0' * 3
new += b'\0' * 8
d[hl:hl + len(new)] = new
d[8:16] = struct.pack('>Q', hl + len(new))
d[hl + len(new):hl + len(new) + bs] = name
open(p, 'wb').write(d)
PY
qemu_check x.qcow2
has_ext() { python3 -c "import sys; d=open('$1','rb').read(65536); sys.exit(0 if bytes.fromhex('123456780000000d')+b'hello, world!' in d else 1)"; }
has_ext x.qcow2 || fail "setup: extension not inserted"
ok vmc img rebase -u -b b2.qcow2 -F qcow2 x.qcow2
has_ext x.qcow2 || fail "rebase -u dropped an unknown header extension"
qemu_check x.qcow2
[ "$(qemu-img info --output=json x.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["backing-filename"])')" = b2.qcow2 ] || fail "rebase -u did not change the backing file"
ok vmc img io -f qcow2 x.qcow2 -c 'write -P 1 0 64k'
has_ext x.qcow2 || fail "a write dropped an unknown header extension"
# feature-name table (0x6803f857) present in images we create
python3 -c "import sys; d=open('x.qcow2','rb').read(4096); sys.exit(0 if bytes.fromhex('6803f857') in d else 1)" || fail "no feature-name table"
note "ok"
