#!/usr/bin/env python3
"""refusals.py SOCKET EXPORT RO_SOCKET RO_EXPORT - NBD requests the server
must refuse, each sent once by a raw stdlib client (tests/nbd/refusals.sh
then checks that the server's log names every one).

Handshake: GO for a missing export (also one whose name holds a newline,
which must not split the log line), STARTTLS, an unknown option (99),
LIST with data, SET_META_CONTEXT before structured replies, and
EXPORT_NAME for a missing export (no reply possible: the server drops the
connection). Transmission: READ past the end, an unknown command (42),
BLOCK_STATUS without a metadata context, FLUSH with an offset, and WRITE
to a read-only export. Every reply must carry the error of NBD proto.md.
"""
import socket
import struct
import sys

from nbdwire import (IHAVEOPT, REPMAGIC, REQ, SIMPLE, ACK, ERR_UNSUP,
                     ERR_POLICY, ERR_INVALID, ERR_UNKNOWN, EPERM, EINVAL,
                     failures, check, recvall, closed)

OPT_EXPORT_NAME, OPT_LIST, OPT_STARTTLS, OPT_GO = 1, 3, 5, 7
OPT_SET_META_CONTEXT = 10
CMD_READ, CMD_WRITE, CMD_FLUSH, CMD_BLOCK_STATUS = 0, 1, 3, 7


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    recvall(s, 18)                          # NBDMAGIC, IHAVEOPT, flags
    s.sendall(struct.pack(">I", 3))         # FIXED_NEWSTYLE | NO_ZEROES
    return s


def opt(s, o, data=b""):
    """Sends option @o; returns the type of its final reply."""
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)
    while True:
        m, ro, t, ln = struct.unpack(">QIII", recvall(s, 20))
        assert m == REPMAGIC and ro == o, "bad option reply"
        recvall(s, ln)
        if t == ACK or t & 0x80000000:
            return t


def go_data(name):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", 0)


def request(s, cmd, off, ln, flags=0, payload=b""):
    """Sends one request (no structured replies); returns its error."""
    s.sendall(struct.pack(">IHHQQI", REQ, flags, cmd, 7, off, ln) + payload)
    m, err, cookie = struct.unpack(">IIQ", recvall(s, 16))
    assert m == SIMPLE and cookie == 7, "bad reply"
    return err


def main():
    path, export, ro_path, ro_export = sys.argv[1:5]
    export, ro_export = export.encode(), ro_export.encode()

    s = connect(path)
    check(opt(s, OPT_GO, go_data(b"no-such-export")) == ERR_UNKNOWN,
          "GO for a missing export: ERR_UNKNOWN")
    check(opt(s, OPT_GO, go_data(b"fake\nvm-clone: forged line"))
          == ERR_UNKNOWN, "GO for a name with a newline: ERR_UNKNOWN")
    check(opt(s, OPT_STARTTLS) == ERR_POLICY, "STARTTLS: ERR_POLICY")
    check(opt(s, 99) == ERR_UNSUP, "option 99: ERR_UNSUP")
    check(opt(s, OPT_LIST, b"x") == ERR_INVALID, "LIST with data: ERR_INVALID")
    meta = struct.pack(">I", len(export)) + export + struct.pack(">I", 0)
    check(opt(s, OPT_SET_META_CONTEXT, meta) == ERR_INVALID,
          "SET_META_CONTEXT without SR: ERR_INVALID")
    check(opt(s, OPT_GO, go_data(export)) == ACK, "GO")
    size = 64 << 20
    check(request(s, CMD_READ, size, 4096) == EINVAL,
          "READ past the end: EINVAL")
    check(request(s, 42, 0, 4096) == EINVAL, "command 42: EINVAL")
    check(request(s, CMD_BLOCK_STATUS, 0, 4096) == EINVAL,
          "BLOCK_STATUS without a context: EINVAL")
    check(request(s, CMD_FLUSH, 512, 0) == EINVAL,
          "FLUSH with an offset: EINVAL")
    s.close()

    s = connect(path)
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_EXPORT_NAME, 9) + b"no-export")
    check(closed(s), "EXPORT_NAME for a missing export: connection dropped")
    s.close()

    s = connect(ro_path)
    check(opt(s, OPT_GO, go_data(ro_export)) == ACK, "GO read-only")
    check(request(s, CMD_WRITE, 0, 512, payload=bytes(512)) == EPERM,
          "WRITE to a read-only export: EPERM")
    s.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
