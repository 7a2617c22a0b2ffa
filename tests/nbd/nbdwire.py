"""nbdwire.py - what the raw NBD test clients (malformed.py, refusals.py)
share: the wire constants of NBD proto.md, check() with its list of
failures, and the socket helpers. Stdlib only."""
import socket

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
