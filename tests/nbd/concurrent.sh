#!/bin/bash
# concurrent: one server, several clients at once.
#  - 8 clients read one export concurrently, 3 of them with nbdcopy (4
#    connections each), while 4 other clients write disjoint ranges of
#    four different clones of one template;
#  - multi-conn consistency: a write + FLUSH on one connection is seen by
#    another connection of the same export;
#  - every clone holds exactly its own writes (qemu-img compare against a
#    shadow), the template is unchanged, qemu-img check is clean.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdsh_ --version
requires nbdcopy --version
requires qemu-io --version

qemu-img create -q -f qcow2 base.qcow2 32M
qemu-io -f qcow2 -c 'write -P 0xb0 0 16M' -c 'write -P 0xb1 16M 16M' base.qcow2 >/dev/null
before=$(sha base.qcow2)
raw_of base.qcow2 base.raw
for i in 1 2 3 4; do
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 c$i.qcow2
done
serve s c1.qcow2 c2.qcow2 c3.qcow2 c4.qcow2

pids=()
for i in 1 2 3 4 5; do
    nbdsh_ -u "$(uri s c1.qcow2)" -c '
import hashlib
for k in range(4):
    d = b"".join(h.pread(1 << 20, o) for o in range(0, 16 << 20, 1 << 20))
    assert d == b"\xb0" * (16 << 20), "bad data"
' > r$i.log 2>&1 &
    pids+=($!)
done
for i in 1 2 3; do
    nbdcopy "$(uri s c1.qcow2)" copy$i.raw > cp$i.log 2>&1 &
    pids+=($!)
done
for i in 2 3 4; do
    nbdsh_ -u "$(uri s c$i.qcow2)" -c "
import random
rnd = random.Random($i)
for k in range(200):
    off = rnd.randrange(0, (32 << 20) - 70000)
    h.pwrite(bytes([$i]) * rnd.randrange(1, 70000), off)
h.flush()
" > w$i.log 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "a client failed: $(cat r*.log w*.log cp*.log 2>/dev/null | tail -5)"
done
for i in 1 2 3; do
    same_bytes copy$i.raw base.raw
done

# multi-conn: flush on A covers what A wrote, and B sees it
nbdsh_ -c "
a = nbd.NBD(); a.connect_uri('$(uri s c1.qcow2)')
b = nbd.NBD(); b.connect_uri('$(uri s c1.qcow2)')
assert a.can_multi_conn() and b.can_multi_conn()
a.pwrite(b'Q' * 4096, 0); a.flush()
assert b.pread(4096, 0) == b'Q' * 4096
b.zero(4096, 0); b.flush()
assert a.pread(4096, 0) == bytes(4096)
a.shutdown(); b.shutdown()
" || fail "multi-conn consistency"
server_alive s
stop_server s

# each clone has only its own writes: replay them on shadows
for i in 2 3 4; do
    cp base.raw shadow$i.raw
    /usr/bin/python3 - shadow$i.raw $i <<'PY'
import random, sys
path, i = sys.argv[1], int(sys.argv[2])
rnd = random.Random(i)
with open(path, "r+b") as f:
    for k in range(200):
        off = rnd.randrange(0, (32 << 20) - 70000)
        f.seek(off)
        f.write(bytes([i]) * rnd.randrange(1, 70000))
PY
    qemu_same c$i.qcow2 shadow$i.raw
    qemu_check c$i.qcow2
done
cp base.raw shadow1.raw
printf 'Q%.0s' $(seq 4096) | dd of=shadow1.raw conv=notrunc status=none
dd if=/dev/zero of=shadow1.raw bs=4096 count=1 conv=notrunc status=none
qemu_same c1.qcow2 shadow1.raw
[ "$(sha base.qcow2)" = "$before" ] || fail "the template changed"
