"""nbdwire.py - what the raw NBD test clients (malformed.py, refusals.py)
share: the wire constants of NBD proto.md, check() with its list of
failures, and the socket helpers. Stdlib only."""
import socket
import struct

IHAVEOPT = 0x49484156454F5054
REPMAGIC = 0x0003e889045565a9
REQ = 0x25609513
SIMPLE = 0x67446698
STRUCT = 0x668e33ef
ACK, SERVER, INFO, META = 1, 2, 3, 4
ERR_UNSUP, ERR_POLICY, ERR_INVALID = 0x80000001, 0x80000002, 0x80000003
ERR_UNKNOWN, ERR_TOO_BIG = 0x80000006, 0x80000009
EPERM, EINVAL, ENOSPC, ENOTSUP = 1, 22, 28, 95

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def recvall(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed")
        b += c
    return b


def closed(s, timeout=5):
    """True if the server closes the connection (EOF or reset)."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def session(path, name=b"", timeout=10):
    """A client on Unix socket @path that has chosen export @name with
    NBD_OPT_GO (fixed newstyle, no zeroes, simple replies)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    recvall(s, 18)                                   # greeting
    s.sendall(struct.pack(">I", 3))
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, 6 + len(name)) +
              struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    while True:
        m, o, t, ln = struct.unpack(">QIII", recvall(s, 20))
        recvall(s, ln)
        if t == ACK:
            return s
        if t & 0x80000000:
            raise EOFError("GO refused: 0x%x" % t)


def read_req(s, off, ln, cookie=1):
    s.sendall(struct.pack(">IHHQQI", REQ, 0, 0, cookie, off, ln))


def read_reply(s, ln):
    """(error, cookie, data) of a simple reply to a READ of @ln bytes."""
    m, err, ck = struct.unpack(">IIQ", recvall(s, 16))
    if m != SIMPLE:
        raise EOFError("bad reply magic 0x%x" % m)
    return err, ck, recvall(s, ln) if err == 0 else b""


def vm_kib(pid, field):
    """VmRSS / VmHWM ... of process @pid, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
