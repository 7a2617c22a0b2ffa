#!/usr/bin/env python3
"""malformed.py SOCKET EXPORT - hostile NBD traffic against a server.

Stdlib only. Every case opens its own connection, sends bad or odd input,
and checks the answer named in NBD proto.md (an error reply, or a clean
disconnect). Meanwhile a well-behaved client thread writes and reads back
data on the same export and must never see an error. At the end the
server must still accept and serve a new client.
"""
import os
import socket
import struct
import sys
import threading
import time

from nbdwire import (IHAVEOPT, REPMAGIC, REQ, SIMPLE, STRUCT, ACK, SERVER,
                     INFO, META, ERR_UNSUP, ERR_POLICY, ERR_INVALID,
                     ERR_UNKNOWN, ERR_TOO_BIG, EPERM, EINVAL, ENOSPC, ENOTSUP,
                     failures, check, recvall, closed)

PATH, EXPORT = sys.argv[1], sys.argv[2].encode()


def connect(cflags=3, raw=False):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(PATH)
    magic, opt, gflags = struct.unpack(">QQH", recvall(s, 18))
    assert magic == 0x4e42444d41474943 and opt == IHAVEOPT, "bad greeting"
    if not raw:
        s.sendall(struct.pack(">I", cflags))
    return s


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)
    out = []
    while True:
        m, ro, t, ln = struct.unpack(">QIII", recvall(s, 20))
        assert m == REPMAGIC and ro == o, "bad option reply"
        out.append((t, recvall(s, ln)))
        if t == ACK or t & 0x80000000:
            return out


def go(s, name=EXPORT, o=7):
    return opt(s, o, struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, 3))


def request(s, cmd, off, ln, flags=0, cookie=1, payload=b""):
    s.sendall(struct.pack(">IHHQQI", REQ, flags, cmd, cookie, off, ln) + payload)


def reply(s, readlen=0):
    """Returns (error, cookie, data) for one whole reply."""
    data, err = b"", 0
    while True:
        m = struct.unpack(">I", recvall(s, 4))[0]
        if m == SIMPLE:
            err, ck = struct.unpack(">IQ", recvall(s, 12))
            if not err and readlen:
                data = recvall(s, readlen)
            return err, ck, data
        assert m == STRUCT, "bad reply magic %#x" % m
        fl, ty, ck, ln = struct.unpack(">HHQI", recvall(s, 16))
        p = recvall(s, ln)
        if ty & 0x8000:
            err = struct.unpack(">I", p[:4])[0]
        elif ty == 1:
            data += p[8:]
        elif ty == 2:
            data += bytes(struct.unpack(">I", p[8:12])[0])
        if fl & 1:
            return err, ck, data


def session(sr=True):
    s = connect()
    if sr:
        assert opt(s, 8)[-1][0] == ACK
    r = go(s)
    assert r[-1][0] == ACK, "GO failed: %r" % (r,)
    size = None
    for t, d in r:
        if t == INFO and struct.unpack(">H", d[:2])[0] == 0:
            size = struct.unpack(">Q", d[2:10])[0]
    return s, size


# ------------------------------------------------------------ good client
stop = threading.Event()
good_errors = []
good_ops = [0]


def good_client():
    try:
        s, size = session()
        n = 0
        while not stop.is_set():
            off = (n % 64) * 65536
            pat = bytes([n % 251 + 1]) * 65536
            request(s, 1, off, 65536, cookie=2 * n, payload=pat)
            e, ck, _ = reply(s)
            if e or ck != 2 * n:
                good_errors.append("write error %d" % e)
                break
            request(s, 0, off, 65536, cookie=2 * n + 1)
            e, ck, d = reply(s, 65536)
            if e or ck != 2 * n + 1 or d != pat:
                good_errors.append("read back mismatch (err %d)" % e)
                break
            n += 1
            good_ops[0] = n
        request(s, 2, 0, 0)
        s.close()
    except Exception as ex:  # noqa
        good_errors.append("good client: %r" % ex)


t = threading.Thread(target=good_client)
t.start()
time.sleep(0.2)

# ------------------------------------------------------------ handshake
s = connect(cflags=0x8003)
check(closed(s), "unknown client flags must be refused by closing")

s = connect()
s.sendall(struct.pack(">QII", 0x1122334455667788, 7, 0))
check(closed(s), "bad option magic must close")

s = connect()
s.sendall(struct.pack(">QII", IHAVEOPT, 7, 0xffffffff))
check(closed(s), "option length 0xffffffff must close")

s = connect()
r = opt(s, 0x1234, b"12345")
check(r[-1][0] == ERR_UNSUP, "unknown option: ERR_UNSUP")
check(opt(s, 3, b"x")[-1][0] == ERR_INVALID, "LIST with data: ERR_INVALID")
check(opt(s, 5)[-1][0] == ERR_POLICY, "STARTTLS: ERR_POLICY")
check(opt(s, 11)[-1][0] == ERR_UNSUP, "EXTENDED_HEADERS: ERR_UNSUP")
check(opt(s, 10, struct.pack(">I", 0) + struct.pack(">I", 0))[-1][0] == ERR_INVALID,
      "SET_META_CONTEXT before SR: ERR_INVALID")
check(opt(s, 7, struct.pack(">I", 100) + b"ab" + struct.pack(">H", 0))[-1][0] == ERR_INVALID,
      "GO namelen > optlen: ERR_INVALID")
check(opt(s, 7, struct.pack(">I", 2) + b"ab" + struct.pack(">H", 5))[-1][0] == ERR_INVALID,
      "GO info count past the end: ERR_INVALID")
check(go(s, b"n" * 5000)[-1][0] == ERR_INVALID, "5000-byte name: ERR_INVALID")
check(go(s, b"n" * 4096)[-1][0] == ERR_UNKNOWN, "4096-byte unknown name: ERR_UNKNOWN")
check(go(s, b"no-such-export")[-1][0] == ERR_UNKNOWN, "unknown export: ERR_UNKNOWN")
check(opt(s, 8)[-1][0] == ACK, "STRUCTURED_REPLY")
check(opt(s, 8)[-1][0] == ERR_INVALID, "STRUCTURED_REPLY twice: ERR_INVALID")
q = struct.pack(">I", len(EXPORT)) + EXPORT + struct.pack(">I", 1) + struct.pack(">I", 9999) + b"x"
check(opt(s, 10, q)[-1][0] == ERR_INVALID, "query length past the option: ERR_INVALID")
q = struct.pack(">I", len(EXPORT)) + EXPORT + struct.pack(">I", 2) + \
    struct.pack(">I", 15) + b"base:allocation" + struct.pack(">I", 8) + b"x-nope:a"
r = opt(s, 10, q)
check(r[-1][0] == ACK and len(r) == 2 and r[0][1][4:] == b"base:allocation",
      "SET_META_CONTEXT: one context, unknown ignored")
r = opt(s, 9, struct.pack(">I", len(EXPORT)) + EXPORT + struct.pack(">I", 1) +
        struct.pack(">I", 5) + b"qemu:")
check(r[-1][0] == ACK and [d[4:] for t, d in r[:-1]] == [b"qemu:allocation-depth"],
      "LIST_META_CONTEXT qemu: wildcard")
r = go(s)
check(r[-1][0] == ACK, "GO after all that")
request(s, 0, 0, 4096, cookie=77)
e, ck, d = reply(s, 4096)
check(e == 0 and ck == 77 and len(d) == 4096, "READ after a messy handshake")
s.close()

s = connect()
for i in range(300):
    try:
        opt(s, 0x1234)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        break
check(i < 299, "endless options must be cut off")

s = connect()
s.sendall(struct.pack(">QII", IHAVEOPT, 1, 7) + b"nothere")
check(closed(s), "EXPORT_NAME of an unknown export: close")

s = connect(cflags=1)          # no NO_ZEROES: 124 zero bytes follow
s.sendall(struct.pack(">QII", IHAVEOPT, 1, len(EXPORT)) + EXPORT)
d = recvall(s, 134)
check(d[10:] == bytes(124), "EXPORT_NAME reply with zero padding")
request(s, 0, 0, 512, cookie=5)
e, ck, d = reply(s, 512)
check(e == 0 and ck == 5, "READ after EXPORT_NAME (simple reply)")
s.close()

s = connect()
r = opt(s, 2)
check(r[-1][0] == ACK, "ABORT: ACK")
check(closed(s), "ABORT: close")

# EOF at every byte of a handshake + request
s, size = session()
s.close()
hs = struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 8, 0) + \
    struct.pack(">QII", IHAVEOPT, 7, 4 + len(EXPORT) + 4) + \
    struct.pack(">I", len(EXPORT)) + EXPORT + struct.pack(">HH", 1, 3) + \
    struct.pack(">IHHQQI", REQ, 0, 1, 9, 0, 16) + b"0123456789abcdef"
for cut in range(0, len(hs), 3):
    s = connect(raw=True)
    s.sendall(hs[:cut])
    s.close()

# ------------------------------------------------------------ transmission
s, size = session()
request(s, 99, 0, 512, cookie=1)
check(reply(s)[0] == EINVAL, "unknown command: EINVAL")
request(s, 8, 0, 512, cookie=2)
check(reply(s)[0] == EINVAL, "RESIZE: EINVAL")
request(s, 0, 0, 0, cookie=3)
check(reply(s)[0] == EINVAL, "READ length 0: EINVAL")
request(s, 0, (1 << 64) - 512, 1024, cookie=4)
check(reply(s)[0] == EINVAL, "READ wrapping 2^64: EINVAL")
request(s, 0, 1 << 63, 512, cookie=5)
check(reply(s)[0] == EINVAL, "READ at 2^63: EINVAL")
request(s, 0, 0, 0xffffffff, cookie=6)
check(reply(s)[0] == EINVAL, "READ of 4 GiB: EINVAL")
request(s, 1, (1 << 64) - 512, 1024, cookie=7, payload=bytes(1024))
check(reply(s)[0] == ENOSPC, "WRITE wrapping 2^64: ENOSPC")
request(s, 1, size - 512, 1024, cookie=8, payload=bytes(1024))
check(reply(s)[0] == ENOSPC, "WRITE straddling the end: ENOSPC")
request(s, 6, size, 4096, cookie=9)
check(reply(s)[0] == ENOSPC, "WRITE_ZEROES past the end: ENOSPC")
request(s, 3, 4096, 512, cookie=10)
check(reply(s)[0] == EINVAL, "FLUSH with offset/length: EINVAL")
request(s, 7, 0, 0xffffffff, cookie=11)
check(reply(s)[0] == EINVAL, "BLOCK_STATUS of 4 GiB without context: EINVAL")
request(s, 4, 0, 0, cookie=12)
check(reply(s)[0] == EINVAL, "TRIM length 0: EINVAL")
request(s, 0, 0, 512, flags=0x8000, cookie=13)
check(reply(s)[0] == EINVAL, "READ with an unknown flag: EINVAL")
request(s, 1, 0, 512, flags=0x04, cookie=14, payload=bytes(512))
check(reply(s)[0] == EINVAL, "WRITE with DF: EINVAL")
big = 40 << 20
request(s, 1, 0, big, cookie=15, payload=bytes(big))
check(reply(s)[0] == EINVAL, "WRITE of 40 MiB: EINVAL")
request(s, 0, 0, 512, cookie=16)
check(reply(s, 512)[0] == 0, "connection alive after a refused 40 MiB WRITE")
for i in range(64):                          # pipelined, duplicate cookies
    request(s, 0, i * 4096, 4096, cookie=1000 + i % 32)
seen = sorted(reply(s, 4096)[1] for i in range(64))
check(seen == sorted([1000 + i % 32 for i in range(64)]), "64 pipelined READs answered")
request(s, 2, 0, 0)
check(closed(s), "DISC: close")

s, size = session()
request(s, 1, 0, 128 << 20, cookie=1)        # header only, no payload
check(closed(s, 10), "WRITE claiming 128 MiB: disconnect")

s, size = session()
s.sendall(struct.pack(">IHHQQI", 0x12345678, 0, 0, 1, 0, 512))
check(closed(s), "bad request magic: close")

s, size = session()
request(s, 1, 0, 1 << 20, cookie=1, payload=b"x" * 100)
s.close()                                    # disconnect mid-payload
s, size = session()
s.sendall(struct.pack(">IHH", REQ, 0, 0))   # half a header
s.close()
s, size = session()
for i in range(16):                          # leave with reads in flight
    request(s, 0, 0, 1 << 20, cookie=i)
s.close()

# many idle connections beyond the cap (server runs with a small cap and
# a short handshake timeout): the server survives
idle = []
for i in range(40):
    try:
        c = socket.socket(socket.AF_UNIX)
        c.connect(PATH)
        idle.append(c)
    except OSError:
        pass
time.sleep(0.5)
for c in idle:
    c.close()

stop.set()
t.join(60)
check(not good_errors, "the good client saw errors: %r" % good_errors)
check(good_ops[0] > 0, "the good client made no progress")

# and a new client is served
time.sleep(0.5)
s, size = session()
request(s, 0, 0, 65536, cookie=42)
e, ck, d = reply(s, 65536)
check(e == 0 and ck == 42, "new client after the storm")
request(s, 2, 0, 0)
s.close()

print("%d failures, good client did %d write+read pairs" % (len(failures), good_ops[0]))
sys.exit(1 if failures else 0)
