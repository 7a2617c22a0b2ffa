#!/usr/bin/env python3
"""vhdx-tool.py - edit VHDX files for the vhdx tests (written from
[MS-VHDX]: headers and region table with CRC-32C, metadata items, BAT).

  vhdx-tool.py header FILE OFF SIZE VALUE     both headers, CRC fixed
  vhdx-tool.py header-crc FILE                break both headers' CRC
  vhdx-tool.py region FILE NAME FIELD VALUE   NAME bat|meta, FIELD off|len
  vhdx-tool.py region-crc FILE                break both region tables' CRC
  vhdx-tool.py meta FILE ITEM VALUE           ITEM bsize|flags|vsize|lss
  vhdx-tool.py bat FILE INDEX VALUE           raw 64-bit BAT entry
  vhdx-tool.py log-entry FILE                 a log GUID and one log entry
  vhdx-tool.py log-guid FILE                  a log GUID, empty log
  vhdx-tool.py mkdiff CHILD BASE_RAW EXPECTED PARENT_PATH
      turn CHILD (a fresh dynamic VHDX, 1 MiB blocks, the base's size)
      into a differencing file whose parent locator's relative_path is
      PARENT_PATH; EXPECTED gets its guest view over BASE_RAW.
"""
import struct
import sys
import uuid

MiB = 1 << 20
GUIDS = {
    "bat": "2DC27766-F623-4200-9D64-115E9BFD4A08",
    "meta": "8B7CA206-4790-4B9A-B8FE-575F050F886E",
    "params": "CAA16737-FA36-4D43-B3B6-33F0AA44E76B",
    "vsize": "2FA54224-CD1B-4876-B211-5DBED83BF4B8",
    "lss": "8141BF1D-A96F-4709-BA47-F233A8FAAB5F",
    "parent": "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C",
    "loctype": "B04AEFB7-D19E-4A81-B789-25B8E9445913",
}


def g(name):
    return uuid.UUID(GUIDS[name]).bytes_le


def crc32c(data):
    crc = 0xffffffff
    table = crc32c.table
    for b in data:
        crc = table[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
        t.append(c)
    return t


crc32c.table = _table()


def rw(path):
    return open(path, "r+b")


def fix_crc(f, off, size):
    f.seek(off)
    b = bytearray(f.read(size))
    b[4:8] = b"\0\0\0\0"
    b[4:8] = struct.pack("<I", crc32c(b))
    f.seek(off)
    f.write(b)


def headers(f, fn):
    for off in (64 << 10, 128 << 10):
        f.seek(off)
        b = bytearray(f.read(4096))
        fn(b)
        f.seek(off)
        f.write(b)
        fix_crc(f, off, 4096)


def regions(f):
    f.seek(192 << 10)
    rt = f.read(65536)
    n = struct.unpack_from("<I", rt, 8)[0]
    out = {}
    for i in range(n):
        e = rt[16 + 32 * i:48 + 32 * i]
        for k in ("bat", "meta"):
            if e[:16] == g(k):
                out[k] = (16 + 32 * i,) + struct.unpack_from("<QI", e, 16)
    return out


def meta_items(f):
    meta_off = regions(f)["meta"][1]
    f.seek(meta_off)
    t = f.read(65536)
    n = struct.unpack_from("<H", t, 10)[0]
    items = {}
    for i in range(n):
        e = t[32 + 32 * i:64 + 32 * i]
        for k in ("params", "vsize", "lss", "parent"):
            if e[:16] == g(k):
                o, ln = struct.unpack_from("<II", e, 16)
                items[k] = (meta_off + o, ln)
    return meta_off, n, items


def bat_off(f):
    return regions(f)["bat"][1]


def cmd_header(path, off, size, value):
    fmt = {2: "<H", 4: "<I", 8: "<Q"}[int(size)]
    with rw(path) as f:
        headers(f, lambda b: struct.pack_into(fmt, b, int(off, 0), int(value, 0)))


def cmd_header_crc(path):
    with rw(path) as f:
        for off in (64 << 10, 128 << 10):
            f.seek(off + 4)
            v = struct.unpack("<I", f.read(4))[0]
            f.seek(off + 4)
            f.write(struct.pack("<I", v ^ 1))


def cmd_region(path, name, field, value):
    with rw(path) as f:
        at = regions(f)[name][0] + (16 if field == "off" else 24)
        for base in (192 << 10, 256 << 10):
            f.seek(base + at)
            f.write(struct.pack("<Q" if field == "off" else "<I", int(value, 0)))
            fix_crc(f, base, 65536)


def cmd_region_crc(path):
    with rw(path) as f:
        for base in (192 << 10, 256 << 10):
            f.seek(base + 4)
            v = struct.unpack("<I", f.read(4))[0]
            f.seek(base + 4)
            f.write(struct.pack("<I", v ^ 1))


def cmd_meta(path, item, value):
    with rw(path) as f:
        _, _, items = meta_items(f)
        if item in ("bsize", "flags"):
            off, fmt = items["params"][0] + (0 if item == "bsize" else 4), "<I"
        elif item == "vsize":
            off, fmt = items["vsize"][0], "<Q"
        else:
            off, fmt = items["lss"][0], "<I"
        f.seek(off)
        f.write(struct.pack(fmt, int(value, 0)))


def cmd_bat(path, index, value):
    with rw(path) as f:
        f.seek(bat_off(f) + 8 * int(index))
        f.write(struct.pack("<Q", int(value, 0)))


def cmd_log(path, entry):
    guid = uuid.uuid4().bytes_le
    with rw(path) as f:
        headers(f, lambda b: b.__setitem__(slice(48, 64), guid))
        f.seek(64 << 10)
        h = f.read(4096)
        log_off = struct.unpack_from("<Q", h, 72)[0]
        if entry:
            e = bytearray(4096)
            e[0:4] = b"loge"
            struct.pack_into("<IIQI", e, 8, 4096, 0, 1, 0)
            e[32:48] = guid
            f.seek(log_off)
            f.write(e)


def cmd_mkdiff(child, base_raw, expected, parent_path):
    with open(base_raw, "rb") as f:
        view = bytearray(f.read())
    with rw(child) as f:
        meta_off, n, items = meta_items(f)
        # HasParent in the file parameters
        f.seek(items["params"][0] + 4)
        f.write(struct.pack("<I", 2))
        bs = struct.unpack("<I", (f.seek(items["params"][0]), f.read(4))[1])[0]
        assert bs == MiB, "mkdiff wants 1 MiB blocks"
        # the parent locator item, at 512 KiB into the metadata region
        keys = [("parent_linkage", "{%s}" % uuid.uuid4()),
                ("relative_path", parent_path)]
        body = bytearray()
        ents = bytearray()
        base = 20 + 12 * len(keys)
        for k, v in keys:
            kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
            ko = base + len(body)
            body += kb
            vo = base + len(body)
            body += vb
            ents += struct.pack("<IIHH", ko, vo, len(kb), len(vb))
        loc = g("loctype") + struct.pack("<HH", 0, len(keys)) + ents + body
        f.seek(meta_off + (512 << 10))
        f.write(loc)
        f.seek(meta_off + 32 + 32 * n)
        f.write(g("parent") + struct.pack("<IIII", 512 << 10, len(loc), 4, 0))
        f.seek(meta_off + 10)
        f.write(struct.pack("<H", n + 1))
        # blocks: 0 partly present (sectors 0-7, 100-103), 2 fully
        # present, 3 zero; the sector bitmap after chunk_ratio entries
        f.seek(0, 2)
        end = (f.tell() + MiB - 1) // MiB * MiB
        chunk_ratio = (1 << 23) * 512 // bs
        bm_at, b0_at, b2_at = end, end + MiB, end + 2 * MiB
        bm = bytearray(MiB)
        for s in list(range(8)) + list(range(100, 104)):
            bm[s // 8] |= 1 << (s % 8)
            view[s * 512:(s + 1) * 512] = b"\xa1" * 512
        f.seek(bm_at)
        f.write(bm)
        f.seek(b0_at)
        f.write(b"\xa1" * MiB)
        f.seek(b2_at)
        f.write(b"\xa2" * MiB)
        view[2 * MiB:3 * MiB] = b"\xa2" * MiB
        view[3 * MiB:4 * MiB] = bytes(MiB)
        bat = bat_off(f)
        # qemu-img leaves unwritten blocks ZERO: make them NOT_PRESENT
        nblocks = (len(view) + bs - 1) // bs
        f.seek(bat)
        f.write(bytes(8 * nblocks))
        for idx, e in ((0, b0_at | 7), (2, b2_at | 6), (3, 2),
                       (chunk_ratio, bm_at | 6)):
            f.seek(bat + 8 * idx)
            f.write(struct.pack("<Q", e))
    with open(expected, "wb") as f:
        f.write(view)


def main(a):
    cmds = {"header": cmd_header, "header-crc": cmd_header_crc,
            "region": cmd_region, "region-crc": cmd_region_crc,
            "meta": cmd_meta, "bat": cmd_bat,
            "log-entry": lambda p: cmd_log(p, True),
            "log-guid": lambda p: cmd_log(p, False),
            "mkdiff": cmd_mkdiff}
    cmds[a[0]](*a[1:])


main(sys.argv[1:])
