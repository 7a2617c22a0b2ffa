#!/usr/bin/python3
# flush-order.py - check in an strace log of an NBD server that every
# flush reply came after the client's writes were made durable
# (reliability.md §6 test 22; used by tests/nbd/load.sh).
#
#   flush-order.py TRACE IMAGE:COOKIELOG...
#
# TRACE is `strace -f -y -xx -s 64 -e trace=fsync,fdatasync,sendmsg`
# output. Each COOKIELOG lists "COOKIE write|flush" per request of one
# client, whose image file is IMAGE (a path or a unique name in it); the
# clients must have connected one after the other in the order given
# (the N-th socket the server first sends on belongs to the N-th). For
# every flush that follows at least one write, an fsync/fdatasync of that
# image must complete (= 0) after the reply to the client's last write
# before it, and before the reply to the flush. A reply is found by the
# handle in the first iovec of a sendmsg (simple, structured or extended
# reply header). Prints one summary line; exits 1 on any violation.
import re
import struct
import sys

REPLY_MAGICS = (0x67446698, 0x668E33EF, 0x6E8A278C)
line_re = re.compile(r'^(\d+)\s+(.*)$')
iov_re = re.compile(r'iov_base="((?:\\x[0-9a-f]{2})+)"')


def unhex(s):
    return bytes(int(s[i + 2:i + 4], 16) for i in range(0, len(s), 4))


def fd_path(text):
    """The path strace -y printed for the first fd argument (-xx prints
    it hex-escaped)."""
    p = text[text.find("<") + 1:text.find(">")]
    return unhex(p).decode(errors="replace") if p.startswith("\\x") else p


def parse(trace):
    """Lists of (line number, handle) for replies and (line number, path)
    for completed syncs."""
    replies, syncs, pending, socks = {}, [], {}, []
    with open(trace, errors="replace") as f:
        for no, raw in enumerate(f):
            m = line_re.match(raw)
            pid, text = (m.group(1), m.group(2)) if m else ("", raw)
            if text.startswith(("fsync(", "fdatasync(")):
                path = fd_path(text)
                if "<unfinished" in text:
                    pending[pid] = path
                elif re.search(r"= 0$", text.strip()):
                    syncs.append((no, path))
            elif re.match(r"<\.\.\. f(data)?sync resumed>", text):
                if re.search(r"= 0$", text.strip()) and pid in pending:
                    syncs.append((no, pending.pop(pid)))
            elif text.startswith("sendmsg("):
                sock = fd_path(text)
                if sock not in socks:
                    socks.append(sock)
                m = iov_re.search(text)
                if not m:
                    continue
                hdr = unhex(m.group(1))
                if len(hdr) >= 16 and struct.unpack(">I", hdr[:4])[0] in REPLY_MAGICS:
                    handle = struct.unpack(">Q", hdr[8:16])[0]
                    replies.setdefault((sock, handle), no)
    return replies, syncs, socks


def main():
    replies, syncs, socks = parse(sys.argv[1])
    if len(socks) != len(sys.argv) - 2:
        print("%d client sockets in the trace, %d clients given"
              % (len(socks), len(sys.argv) - 2))
        return 1
    checked = bad = 0
    for sock, arg in zip(socks, sys.argv[2:]):
        image, log = arg.rsplit(":", 1)
        reqs = [l.split() for l in open(log)]
        missing = [c for c, _ in reqs if (sock, int(c)) not in replies]
        if missing:
            print("%s: no reply to requests %s in the trace"
                  % (image, " ".join(missing[:5])))
            return 1
        last_write = None
        for cookie, kind in reqs:
            line = replies[(sock, int(cookie))]
            if kind == "write":
                last_write = line
                continue
            if last_write is None:
                continue
            checked += 1
            if not any(last_write < no < line and image in path
                       for no, path in syncs):
                bad += 1
                print("%s: flush %s (trace line %d) replied with no sync of "
                      "the image after the write replied at line %d"
                      % (image, cookie, line + 1, last_write + 1))
            last_write = None
    print("flush-order: %d flushes after writes checked, %d without a "
          "preceding fsync/fdatasync, %d syncs in the trace"
          % (checked, bad, len(syncs)))
    return 1 if bad or not checked else 0


sys.exit(main())
