#!/usr/bin/python3
# load.py - one client of the load-with-durability test (tests/nbd/load.sh,
# reliability.md §6 test 22).
#
#   load.py URI SHADOW_IN SHADOW_OUT SEED SECONDS FLUSH_LOG
#
# Mixed reads and writes of 4 KiB..1 MiB (4 KiB-aligned sizes, offsets
# 512-byte aligned or not) with a flush about every 10th request, for
# SECONDS. Every write is mirrored into an in-memory shadow (started from
# SHADOW_IN, the guest view of the clone's template); every read must
# equal the shadow. Writes and flushes are sent with aio_* so their cookie
# (the NBD handle on the wire) is known: one line "COOKIE write|flush" per
# request goes to FLUSH_LOG, for the strace check of load.sh. The final shadow is written
# to SHADOW_OUT. Prints "ops=N reads=N writes=N flushes=N bytes=N" and
# exits 1 at the first error or mismatch.
import random
import sys
import time

import nbd

uri, shadow_in, shadow_out, seed, seconds, flush_log = sys.argv[1:7]
rnd = random.Random(int(seed))
with open(shadow_in, "rb") as f:
    shadow = bytearray(f.read())
size = len(shadow)

h = nbd.NBD()
h.connect_uri(uri)
if h.get_size() != size:
    sys.exit("size %d, shadow %d" % (h.get_size(), size))


def one_size():
    # 4 KiB..1 MiB, small sizes more often (log-uniform)
    return 4096 * min(256, int(2 ** rnd.uniform(0, 8.01)))


def wait_for(cookie):
    while not h.aio_command_completed(cookie):
        h.poll(-1)


ops = reads = writes = flushes = nbytes = 0
flog = open(flush_log, "w")
end = time.monotonic() + float(seconds)
while time.monotonic() < end:
    ops += 1
    r = rnd.random()
    n = one_size()
    off = rnd.randrange(0, size - n + 1)
    if rnd.random() < 0.5:
        off &= ~511
    if r < 0.1:
        cookie = h.aio_flush()
        flog.write("%d flush\n" % cookie)
        wait_for(cookie)
        flushes += 1
    elif r < 0.55:
        data = bytes([rnd.randrange(256)]) * 16 + rnd.randbytes(n - 16)
        cookie = h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), off)
        flog.write("%d write\n" % cookie)
        wait_for(cookie)
        shadow[off:off + n] = data
        writes += 1
        nbytes += n
    else:
        got = h.pread(n, off)
        if got != shadow[off:off + n]:
            bad = next(i for i in range(n) if got[i] != shadow[off + i])
            sys.exit("read mismatch at %d (op %d)" % (off + bad, ops))
        reads += 1
        nbytes += n
cookie = h.aio_flush()
flog.write("%d flush\n" % cookie)
flog.close()
wait_for(cookie)
flushes += 1
h.shutdown()
with open(shadow_out, "wb") as f:
    f.write(shadow)
print("ops=%d reads=%d writes=%d flushes=%d bytes=%d"
      % (ops, reads, writes, flushes, nbytes))
