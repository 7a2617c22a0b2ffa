#!/bin/bash
# copy: reading a served linked clone with real clients gives exactly the
# guest view of the chain.
#  - nbdcopy URI null: and nbdcopy URI file (equal to qemu-img convert
#    -O raw of the image, taken before serving), with 1 and 4 connections;
#  - qemu-img convert and compare on the nbd+unix URI;
#  - clients without structured replies and without fixed newstyle
#    (EXPORT_NAME path) read the same bytes;
#  - a raw-file export and a TCP listener on 127.0.0.1.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdcopy --version
requires nbdsh_ --version
requires qemu-io --version

qemu-img create -q -f qcow2 base.qcow2 48M
mkpattern pat.raw $((48 << 20))
qemu-img convert -n -f raw -O qcow2 pat.raw base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 clone.qcow2
qemu-io -f qcow2 -c 'write -P 0x5a 1000k 300k' -c 'write -z 16M 2M' \
    -c 'discard 20M 1M' -c 'write -P 0x7e 47M 1M' clone.qcow2 >/dev/null
raw_of clone.qcow2 expect.raw
cp expect.raw plain.raw

serve s --listen 127.0.0.1:0 --readonly clone.qcow2
U=$(uri s clone.qcow2)

ok nbdcopy "$U" null:
ok nbdcopy -C 1 "$U" null:
ok nbdcopy "$U" got4.raw
same_bytes got4.raw expect.raw
ok nbdcopy -C 1 --request-size=1048576 "$U" got1.raw
same_bytes got1.raw expect.raw

ok qemu-img compare -f raw -F raw "$U" expect.raw
qemu-img convert -f raw -O qcow2 "$U" conv.qcow2 || fail "qemu-img convert from NBD"
qemu_same conv.qcow2 expect.raw
qemu-img convert -f raw -O raw "$U" conv.raw || fail "qemu-img convert -O raw from NBD"
same_bytes conv.raw expect.raw

# without structured replies (simple replies only), and via EXPORT_NAME
nbdsh_ -c 'h.set_request_structured_replies(False)' -c "h.connect_uri('$U')" -c "
assert not h.can_df()
open('nosr.raw', 'wb').write(b''.join(h.pread(1 << 20, o) for o in range(0, h.get_size(), 1 << 20)))
" || fail "read without structured replies"
same_bytes nosr.raw expect.raw
nbdsh_ -c 'h.set_handshake_flags(0)' -c "h.connect_uri('$U')" -c "
assert h.get_size() == 48 << 20
assert h.pread(4096, 47 << 20) == b'\x7e' * 4096
" || fail "read after NBD_OPT_EXPORT_NAME without fixed newstyle"

# TCP, on the address given only
port=$(sed -n 's|^nbd://127.0.0.1:\([0-9]*\)/.*|\1|p' "$T/s.out" | head -1)
[ -n "$port" ] || fail "no TCP URI printed: $(cat "$T/s.out")"
ok qemu-img compare -f raw -F raw "nbd://127.0.0.1:$port/clone.qcow2" expect.raw
if ss -ltn 2>/dev/null | grep -q ":$port "; then
    ss -ltn | grep ":$port " | grep -q '127.0.0.1:' || fail "TCP listener is not bound to 127.0.0.1 only"
fi

# a raw file export
serve r plain.raw
ok nbdcopy "$(uri r)" gotr.raw
same_bytes gotr.raw expect.raw
stop_server r
stop_server s
