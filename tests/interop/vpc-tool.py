#!/usr/bin/env python3
"""vpc-tool.py - edit VHD files for the vpc tests (written from the VHD
specification: footer, dynamic header, BAT, parent locators).

  vpc-tool.py patch FILE WHERE OFF SIZE VALUE [--keep-sum]
      WHERE: footer | dyn | bat; OFF: byte offset in that structure (for
      bat: entry index, SIZE ignored); VALUE: integer; checksums are
      recomputed unless --keep-sum.
  vpc-tool.py corrupt-sum FILE footer|dyn
  vpc-tool.py mkdiff BASE OUT EXPECTED_RAW BASE_RAW LOCATOR [CODE]
      a differencing VHD over BASE whose W2ru (or CODE) parent locator is
      LOCATOR, with partly present blocks; EXPECTED_RAW gets its guest
      view, computed from BASE_RAW (the base's guest view).
"""
import struct
import sys

FOOTER, DYN = 512, 1024


def checksum(buf, at):
    b = bytearray(buf)
    b[at:at + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xffffffff


def footer_off(f):
    f.seek(0)
    if f.read(8) == b"conectix":
        return 0
    f.seek(0, 2)
    return f.tell() - FOOTER


def fix_sums(f):
    f.seek(0, 2)
    end = f.tell()
    offs = sorted({footer_off(f), end - FOOTER})
    for o in offs:
        f.seek(o)
        ft = bytearray(f.read(FOOTER))
        if ft[:8] != b"conectix":
            continue
        ft[64:68] = struct.pack(">I", checksum(ft, 64))
        f.seek(o)
        f.write(ft)
    f.seek(footer_off(f))
    ft = f.read(FOOTER)
    dyn = struct.unpack(">Q", ft[16:24])[0]
    if dyn != 0xffffffffffffffff and dyn + DYN <= end:
        f.seek(dyn)
        d = bytearray(f.read(DYN))
        d[36:40] = struct.pack(">I", checksum(d, 36))
        f.seek(dyn)
        f.write(d)


def dyn_off(f):
    f.seek(footer_off(f) + 16)
    return struct.unpack(">Q", f.read(8))[0]


def patch(path, where, off, size, value, keep):
    fmt = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}[size]
    with open(path, "r+b") as f:
        f.seek(0, 2)
        end = f.tell()
        if where == "footer":
            # both copies of the footer
            for o in sorted({footer_off(f), end - FOOTER}):
                f.seek(o + off)
                f.write(struct.pack(fmt, value))
        elif where == "dyn":
            f.seek(dyn_off(f) + off)
            f.write(struct.pack(fmt, value))
        else:
            f.seek(dyn_off(f) + 16)
            bat = struct.unpack(">Q", f.read(8))[0]
            f.seek(bat + 4 * off)
            f.write(struct.pack(">I", value))
        if not keep:
            fix_sums(f)


def corrupt_sum(path, where):
    with open(path, "r+b") as f:
        o = footer_off(f) + 64 if where == "footer" else dyn_off(f) + 36
        f.seek(o)
        v = struct.unpack(">I", f.read(4))[0]
        f.seek(o)
        f.write(struct.pack(">I", v ^ 1))


def mkdiff(base, out, expected, base_raw, locator, code="W2ru"):
    with open(base, "rb") as f:
        ft = bytearray(f.read(FOOTER))
    with open(base_raw, "rb") as f:
        view = bytearray(f.read())
    size = len(view)
    bs = 2 << 20
    nbat = (size + bs - 1) // bs
    bat_off = 3 * 512
    bat_len = (nbat * 4 + 511) // 512 * 512
    loc = locator.encode("utf-16-le")
    loc_off = bat_off + bat_len
    loc_len = (len(loc) + 511) // 512 * 512
    data = loc_off + loc_len
    bitmap = 512
    bat = [0xffffffff] * nbat
    blocks = []
    # block 0: sectors 0-7 and 100-103 present; the last block: all
    plan = {0: (set(range(8)) | set(range(100, 104)), 0xa1),
            nbat - 1: (set(range(bs // 512)), 0xa2)}
    for idx, (secs, pat) in sorted(plan.items()):
        bat[idx] = (data + len(blocks) * (bitmap + bs)) // 512
        bm = bytearray(bitmap)
        for s in secs:
            bm[s // 8] |= 0x80 >> (s % 8)
            o = idx * bs + s * 512
            if o < size:
                view[o:o + 512] = bytes([pat]) * min(512, size - o)
        blocks.append(bytes(bm) + bytes([pat]) * bs)
    ft[60:64] = struct.pack(">I", 4)
    ft[16:24] = struct.pack(">Q", 512)
    ft[68:84] = bytes(range(16))
    ft[64:68] = struct.pack(">I", checksum(ft, 64))
    d = bytearray(DYN)
    d[0:8] = b"cxsparse"
    d[8:16] = b"\xff" * 8
    d[16:24] = struct.pack(">Q", bat_off)
    d[24:28] = struct.pack(">I", 0x10000)
    d[28:32] = struct.pack(">I", nbat)
    d[32:36] = struct.pack(">I", bs)
    name = locator.replace("\\", "/").split("/")[-1].encode("utf-16-be")
    d[64:64 + len(name)] = name
    d[576:600] = code.encode() + struct.pack(">IIIQ", 1, len(loc), 0, loc_off)
    d[36:40] = struct.pack(">I", checksum(d, 36))
    with open(out, "wb") as f:
        f.write(ft)
        f.write(d)
        f.write(b"".join(struct.pack(">I", e) for e in bat).ljust(bat_len, b"\xff"))
        f.write(loc.ljust(loc_len, b"\0"))
        for b in blocks:
            f.write(b)
        f.write(ft)
    with open(expected, "wb") as f:
        f.write(view)


def main(a):
    if a[0] == "patch":
        patch(a[1], a[2], int(a[3], 0), int(a[4]), int(a[5], 0),
              "--keep-sum" in a)
    elif a[0] == "corrupt-sum":
        corrupt_sum(a[1], a[2])
    elif a[0] == "mkdiff":
        mkdiff(*a[1:])
    else:
        sys.exit("unknown command " + a[0])


main(sys.argv[1:])
