#!/usr/bin/env python3
"""Patch a qcow2 image in place, to build broken images for tests.

usage: qcow2-patch.py IMG OP...
  FIELD=VALUE        set a header field (names as in the qcow2 spec:
                     version, cluster_bits, l1_size, refcount_order, ...)
  backing=NAME       store NAME as the backing file name (at offset 4096)
  backing_len=N      store a backing name of N 'a' bytes
  ext_retype=OLD:NEW change the type of header extension OLD (hex) to NEW
  refcount=IDX:VAL   set the refcount of host cluster IDX
  leak               append one cluster and give it refcount 1 (a leak)
  l2_entry=N:HEX     set the (standard, 64-bit) L2 entry of guest cluster N
  l2_clear_copied=N  clear the COPIED bit (63) of guest cluster N's L2 entry
  truncate=N         truncate the file to N bytes
  bytes=OFF:HEX      write raw bytes at OFF
"""
import struct
import sys

FIELDS = {
    "magic": (0, 4), "version": (4, 4), "backing_file_offset": (8, 8),
    "backing_file_size": (16, 4), "cluster_bits": (20, 4), "size": (24, 8),
    "crypt_method": (32, 4), "l1_size": (36, 4), "l1_table_offset": (40, 8),
    "refcount_table_offset": (48, 8), "refcount_table_clusters": (56, 4),
    "nb_snapshots": (60, 4), "snapshots_offset": (64, 8),
    "incompatible_features": (72, 8), "compatible_features": (80, 8),
    "autoclear_features": (88, 8), "refcount_order": (96, 4),
    "header_length": (100, 4), "compression_type": (104, 1),
}
FMT = {1: ">B", 4: ">I", 8: ">Q"}


def rd(f, off, size):
    f.seek(off)
    return struct.unpack(FMT[size], f.read(size))[0]


def wr(f, off, size, val):
    f.seek(off)
    f.write(struct.pack(FMT[size], val))


def set_refcount(f, idx, val):
    cbits = rd(f, 20, 4)
    cs = 1 << cbits
    order = rd(f, 96, 4) if rd(f, 4, 4) >= 3 else 4
    bits = 1 << order
    per_block = cs * 8 // bits
    rt = rd(f, 48, 8)
    rb = rd(f, rt + 8 * (idx // per_block), 8) & ~0x1ff
    if rb == 0:
        sys.exit("qcow2-patch: no refcount block for cluster %d" % idx)
    i = idx % per_block
    if bits >= 8:
        f.seek(rb + i * (bits // 8))
        f.write(val.to_bytes(bits // 8, "big"))
    else:
        per_byte = 8 // bits
        off = rb + i // per_byte
        f.seek(off)
        b = f.read(1)[0]
        shift = (i % per_byte) * bits
        mask = ((1 << bits) - 1) << shift
        b = (b & ~mask) | ((val << shift) & mask)
        f.seek(off)
        f.write(bytes([b]))


def main():
    path, ops = sys.argv[1], sys.argv[2:]
    with open(path, "r+b") as f:
        for op in ops:
            name, _, val = op.partition("=")
            if name in FIELDS:
                off, size = FIELDS[name]
                wr(f, off, size, int(val, 0))
            elif name in ("backing", "backing_len"):
                data = val.encode() if name == "backing" else b"a" * int(val)
                f.seek(4096)
                f.write(data)
                wr(f, 8, 8, 4096)
                wr(f, 16, 4, len(data))
            elif name == "ext_retype":
                old, new = (int(x, 16) for x in val.split(":"))
                hl = rd(f, 100, 4) if rd(f, 4, 4) >= 3 else 72
                off = hl
                while True:
                    t, ln = rd(f, off, 4), rd(f, off + 4, 4)
                    if t == 0:
                        sys.exit("qcow2-patch: extension %x not found" % old)
                    if t == old:
                        wr(f, off, 4, new)
                        break
                    off += 8 + ((ln + 7) & ~7)
            elif name == "refcount":
                idx, v = (int(x, 0) for x in val.split(":"))
                set_refcount(f, idx, v)
            elif name == "leak":
                cs = 1 << rd(f, 20, 4)
                f.seek(0, 2)
                end = (f.tell() + cs - 1) // cs * cs
                f.seek(end)
                f.write(b"\0" * cs)
                set_refcount(f, end // cs, 1)
            elif name in ("l2_entry", "l2_clear_copied"):
                n = int(val.split(":")[0], 0)
                cs = 1 << rd(f, 20, 4)
                per = cs // 8
                l1 = rd(f, 40, 8)
                l2 = rd(f, l1 + 8 * (n // per), 8) & 0x00fffffffffffe00
                if l2 == 0:
                    sys.exit("qcow2-patch: guest cluster %d has no L2 table" % n)
                ent = l2 + 8 * (n % per)
                if name == "l2_entry":
                    wr(f, ent, 8, int(val.split(":")[1], 16))
                else:
                    wr(f, ent, 8, rd(f, ent, 8) & ~(1 << 63))
            elif name == "truncate":
                f.truncate(int(val, 0))
            elif name == "bytes":
                off, hx = val.split(":")
                f.seek(int(off, 0))
                f.write(bytes.fromhex(hx))
            else:
                sys.exit("qcow2-patch: unknown op %r" % op)


main()
