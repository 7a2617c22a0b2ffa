#!/bin/bash
# read-splice: large and small READs, many in flight, on several
# connections, each reply checked byte for byte and matched to its request
# by cookie. Large READs of read-only layers are spliced from the page
# cache (src/nbd/zerocopy.c), small ones answered by the connection thread
# (read_inline() in transmit.c); the chain mixes everything that must not
# take those paths or that changes the reply's shape:
#  - base0: random data in 64 KiB clusters with holes; base: over it, a
#    zeroed cluster and 8 MiB of compressed clusters (qemu-io write -c);
#  - mid: a qcow2 layer with writes at 512-byte-aligned,
#    cluster-unaligned offsets; zeroed and discarded ranges;
#  - top: the exported clone (read-only export, then writable with new
#    writes that must be read back, not spliced from a stale layer);
#  - requests: 512 B ... 2 MiB (above the pipe size: copying path),
#    unaligned offsets, 64 in flight on each of 4 connections at once,
#    over Unix and TCP (libnbd 1.14 refuses the DF flag: not sent);
#  - an image whose data clusters lie past the end of its file: reads
#    give the engine's view (zeros there), the stream stays in sync.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdsh_ --version
requires nbdcopy --version
requires qemu-io --version

M=$((1 << 20))
SIZE=$((40 * M))
# base0: random extents with holes; base: 8-16 MiB compressed over it
truncate -s $SIZE base.raw
python3 - base.raw <<'PY'
import os, random, sys
rnd = random.Random(7)
M = 1 << 20
with open(sys.argv[1], "r+b") as f:
    for start in range(0, 40 * M, 2 * M):
        f.seek(start + rnd.randrange(0, 64) * 4096)
        f.write(os.urandom(rnd.randrange(100 << 10, 1700 << 10)))
PY
qemu-img convert -q -f raw -O qcow2 -o cluster_size=65536 base.raw base0.qcow2
qemu-img create -q -f qcow2 -b base0.qcow2 -F qcow2 base.qcow2
qemu-io -f qcow2 -c "write -P 0 0 64k" base.qcow2 >/dev/null
# write the compressed clusters into base.qcow2 at 8 MiB: qemu-io can
# write compressed clusters one by one
cmds=()
for i in $(seq 0 127); do
    cmds+=(-c "write -c -P $((i % 250 + 1)) $((8 * M + i * 65536)) 64k")
done
qemu-io -f qcow2 "${cmds[@]}" base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
qemu-io -f qcow2 -c "write -P 0x11 $((3 * M + 512)) 200k" \
    -c "write -P 0x22 $((17 * M - 1536)) 777k" -c "write -z $((20 * M)) 1M" \
    -c "discard $((22 * M)) 2M" -c "write -P 0x33 $((39 * M)) 1M" \
    mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -f qcow2 -c "write -P 0x44 $((5 * M + 4096)) 300k" \
    -c "write -P 0x55 $((30 * M)) 64k" top.qcow2 >/dev/null
raw_of top.qcow2 expect.raw

# check_reads URI SEED: 4 connections, 64 in flight each, 1500 reads
check_reads() {
    nbdsh_ -c "
import random, nbd
uri, seed = '$1', $2
expect = open('expect.raw', 'rb').read()
M = 1 << 20
handles = []
for k in range(4):
    h = nbd.NBD()
    h.connect_uri(uri)
    assert h.get_size() == len(expect)
    handles.append(h)
rnd = random.Random(seed)
sizes = [512, 4096, 4096, 12345, 60000, 64 << 10, (64 << 10) + 512,
         256 << 10, 300000, 1 << 20, 2 << 20]
todo = 1500
pending = {}
done = 0
while todo or any(pending.values()):
    for h in handles:
        p = pending.setdefault(id(h), {})
        while todo and len(p) < 64:
            n = rnd.choice(sizes)
            off = rnd.randrange(0, len(expect) - n)
            if rnd.random() < 0.5:
                off -= off % 65536
            buf = nbd.Buffer(n)
            ck = h.aio_pread(buf, off)
            p[ck] = (buf, off, n)
            todo -= 1
    for h in handles:
        p = pending[id(h)]
        if not p:
            continue
        h.poll(0)
        for ck in list(p):
            if h.aio_command_completed(ck):
                buf, off, n = p.pop(ck)
                got = buf.to_bytearray()
                if got != expect[off:off + n]:
                    bad = next(i for i in range(n) if got[i] != expect[off + i])
                    raise SystemExit('read %d@%d: wrong byte at +%d' % (n, off, bad))
                done += 1
    busy = [h for h in handles if pending[id(h)]]
    if busy:
        busy[0].poll(100)
assert done == 1500, done
for h in handles:
    h.shutdown()
" || fail "concurrent large reads of $1 returned wrong data"
}

# read-only export: everything that qualifies is spliced
serve ro --readonly --listen 127.0.0.1:0 top.qcow2
check_reads "$(uri ro)" 1
port=$(sed -n 's|^nbd://127.0.0.1:\([0-9]*\)/.*|\1|p' "$T/ro.out" | head -1)
[ -n "$port" ] || fail "no TCP URI printed: $(cat "$T/ro.out")"
check_reads "nbd://127.0.0.1:$port/top.qcow2" 2
ok nbdcopy "$(uri ro)" got.raw
same_bytes got.raw expect.raw
ok nbdcopy --request-size=$((4 * M)) "$(uri ro)" got4.raw
same_bytes got4.raw expect.raw
stop_server ro

# READ with DF (one OFFSET_DATA chunk, spliced, inline or copied) and
# without it (holes as OFFSET_HOLE), through a raw client: libnbd 1.14
# will not send DF
serve df --readonly top.qcow2
python3 - "$T/df.sock" <<'PY' || fail "DF / sparse READ replies"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def rx(n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        assert d, "server closed"
        b += d
    return b
IHAVEOPT, REP = 0x49484156454F5054, 0x0003e889045565a9
assert len(rx(18)) == 18
s.sendall(struct.pack(">I", 3))
def opt(o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)
    while True:
        m, ro, t, ln = struct.unpack(">QIII", rx(20))
        rx(ln)
        assert m == REP and ro == o and not t & 0x80000000, (o, hex(t))
        if t == 1:
            return
opt(8)                                          # STRUCTURED_REPLY
opt(7, struct.pack(">IH", 0, 0))                # GO ""
expect = open("expect.raw", "rb").read()
def read(off, n, flags):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, 0, off ^ 0x5a5a, off, n))
    got, chunks = bytearray(n), []
    while True:
        m, fl, ty, ck, ln = struct.unpack(">IHHQI", rx(20))
        assert m == 0x668e33ef and ck == off ^ 0x5a5a, "bad chunk"
        body = rx(ln)
        chunks.append(ty)
        if ty == 1:                             # OFFSET_DATA
            o = struct.unpack(">Q", body[:8])[0] - off
            got[o:o + ln - 8] = body[8:]
        elif ty == 2:                           # OFFSET_HOLE
            o, hl = struct.unpack(">QI", body)
            got[o - off:o - off + hl] = bytes(hl)
        else:
            raise SystemExit("chunk type %d at %d+%d" % (ty, off, n))
        if fl & 1:
            return bytes(got), chunks
M = 1 << 20
holes = 0
# 0-64k zero in base, holes in base0 every 2 MiB, data elsewhere
for off in (0, 3 * M, 5 * M, 8 * M, 22 * M - 4096, 30 * M, 12345, 39 * M):
    for n in (4096, 65536, 256 << 10, M):
        for flags in (0, 4):
            data, chunks = read(off, n, flags)
            assert data == expect[off:off + n], "wrong data %d+%d df=%d" % (off, n, flags)
            if flags:
                assert chunks == [1], "DF reply in %r" % chunks
            holes += chunks.count(2)
assert holes, "no OFFSET_HOLE chunk seen"
PY
stop_server df

# writable export: the top layer changes under the server, its clusters
# are read by the copying path; backing data may still be spliced
serve rw top.qcow2
nbdsh_ -u "$(uri rw)" -c "
import os
d = os.urandom(700000)
h.pwrite(d, $((9 * M + 1000)))
h.pwrite(b'\x66' * (3 << 20), $((23 * M)))
h.zero(1 << 20, $((2 * M)))
h.flush()
" || fail "writes over NBD"
stop_server rw
raw_of top.qcow2 expect.raw
serve rw2 top.qcow2
check_reads "$(uri rw2)" 3
stop_server rw2

# data clusters past the end of the file (the engine reads zeros there):
# a splice that comes up short must not cut the reply or change the data
qemu-img create -q -f qcow2 -o cluster_size=65536 cut.qcow2 4M
qemu-io -f qcow2 -c "write -P 0x77 0 4M" cut.qcow2 >/dev/null
len=$(stat -c %s cut.qcow2)
truncate -s $((len - 3 * M / 2 - 4096)) cut.qcow2
vmc img convert -f qcow2 -O raw cut.qcow2 cut.raw
serve cut --readonly cut.qcow2
nbdsh_ -u "$(uri cut)" -c "
expect = open('cut.raw', 'rb').read()
assert len(expect) == 4 << 20
assert expect.count(b'\x77') < 4 << 20, 'the cut removed no data'
for off, n in [(o, 1 << 20) for o in range(0, 4 << 20, 1 << 20)] + \
        [((2 << 20) + 12345, 1 << 20), (3 << 19, 1 << 20)] + \
        [(o, 4096) for o in range(0, 4 << 20, 61440)]:
    n = min(n, len(expect) - off)
    assert h.pread(n, off) == expect[off:off + n], 'wrong data at %d' % off
" || fail "reads of a truncated image"
server_alive cut
stop_server cut
