#!/usr/bin/env python3
"""make-nbd-corpus.py OUTDIR - seed inputs for tests/fuzz/fuzz-nbd.c.

Each seed is a whole client byte stream: client flags, options, then
requests (with WRITE payloads). The output is committed; run this only to
refresh it:  tests/fuzz/make-nbd-corpus.py tests/fuzz/corpus/nbd
"""
import os
import struct
import sys

IHAVEOPT = 0x49484156454F5054
REQ = 0x25609513


def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def go(name=b"clone", o=7, infos=(3, 1, 2)):
    return opt(o, struct.pack(">I", len(name)) + name +
               struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos))


def meta(o, name, queries):
    d = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries))
    for q in queries:
        d += struct.pack(">I", len(q)) + q
    return opt(o, d)


def req(cmd, off, ln, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQI", REQ, flags, cmd, cookie, off, ln) + payload


CF = struct.pack(">I", 3)
SR = opt(8)
CTX = meta(10, b"clone", [b"base:allocation", b"qemu:allocation-depth"])
DISC = req(2, 0, 0)

seeds = {
    "handshake-go": CF + SR + CTX + go() + DISC,
    "list-info": CF + opt(3) + go(o=6) + meta(9, b"clone", []) + meta(9, b"", [b"qemu:", b"base:"]) + opt(2),
    "export-name": struct.pack(">I", 1) + opt(1, b"clone") + req(0, 0, 4096) + DISC,
    "export-name-nozeroes": CF + opt(1, b"") + req(0, 0, 512) + req(3, 0, 0) + DISC,
    "read-sr": CF + SR + go() + req(0, 0, 65536) + req(0, 8000, 3000, cookie=2) +
               req(0, 0, 65536, flags=4, cookie=3) + DISC,
    "read-simple": CF + go() + req(0, 0, 8192) + req(0, 200000, 100, cookie=9) + DISC,
    "write": CF + SR + go() + req(1, 1000, 600, flags=1, payload=b"w" * 600) +
             req(0, 512, 2048, cookie=2) + req(3, 0, 0, cookie=3) + DISC,
    "zero-trim": CF + SR + go() + req(6, 0, 65536) + req(6, 700, 5000, flags=2, cookie=2) +
                 req(6, 4096, 8192, flags=16, cookie=3) + req(4, 1024, 70000, cookie=4) +
                 req(5, 0, 65536, cookie=5) + DISC,
    "block-status": CF + SR + CTX + go() + req(7, 0, 262144) + req(7, 1000, 9000, flags=8, cookie=2) +
                    req(7, 0, 0xffffffff, cookie=3) + DISC,
    "readonly": CF + SR + go(b"ro") + req(1, 0, 512, payload=bytes(512)) + req(4, 0, 512, cookie=2) +
                req(0, 0, 512, flags=1, cookie=3) + DISC,
    "errors": CF + SR + go() + req(99, 0, 1) + req(0, 1 << 63, 512, cookie=2) +
              req(1, (1 << 64) - 512, 1024, cookie=3, payload=bytes(1024)) + req(3, 1, 1, cookie=4) +
              req(0, 0, 0, cookie=5) + DISC,
    "bad-options": CF + opt(0x1234, b"abc") + opt(5) + opt(11) + opt(3, b"x") +
                   meta(10, b"clone", [b"base:allocation"]) +
                   opt(7, struct.pack(">I", 100) + b"ab") + go(b"nope") + SR + SR + go(),
}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
