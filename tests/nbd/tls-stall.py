"""tls-stall.py SOCKET PID BUDGET_MIB CLIDIR - the reply budget over TLS.

Like reply-budget.py, but every client speaks TLS (X.509, the client
certificate in CLIDIR): 8 clients each queue 8 READs of 32 MiB and never
read. The server's peak RSS stays under the budget plus 96 MiB plus 4 MiB
per connection for TLS, a good TLS client's 128 KiB READs each finish
within 4 s, the stalled clients are dropped, and a new TLS client is
served afterwards. Stdlib only (ssl)."""
import socket
import ssl
import struct
import sys
import time

from nbdwire import (ACK, IHAVEOPT, REQ, SIMPLE, check, failures, recvall,
                     vm_kib)

PATH, PID, BUDGET, CLIDIR = (sys.argv[1], int(sys.argv[2]),
                             int(sys.argv[3]), sys.argv[4])
BAD, MIB = 8, 1 << 20
# the good client's READs: small enough to fit the socket buffers, so that
# a client slowed by the host's load (and Python's decryption) is never
# taken for one that does not read its replies
GOOD = 128 << 10

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(CLIDIR + "/ca-cert.pem")
ctx.load_cert_chain(CLIDIR + "/client-cert.pem", CLIDIR + "/client-key.pem")


def option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)
    while True:
        m, o, t, ln = struct.unpack(">QIII", recvall(s, 20))
        recvall(s, ln)
        if t == ACK or t & 0x80000000:
            return t


def tls_session():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(PATH)
    recvall(s, 18)
    s.sendall(struct.pack(">I", 3))
    if option(s, 5) != ACK:
        raise EOFError("STARTTLS refused")
    t = ctx.wrap_socket(s)
    if option(t, 7, struct.pack(">IH", 0, 0)) != ACK:
        raise EOFError("GO refused")
    return t


def read(s, off, ln, cookie):
    s.sendall(struct.pack(">IHHQQI", REQ, 0, 0, cookie, off, ln))
    m, err, ck = struct.unpack(">IIQ", recvall(s, 16))
    check(m == SIMPLE and err == 0 and ck == cookie,
          "READ %d: magic 0x%x error %d cookie %d" % (cookie, m, err, ck))
    return recvall(s, ln)


base = vm_kib(PID, "VmRSS")
bad = []
for i in range(BAD):
    s = tls_session()
    for j in range(8):
        s.sendall(struct.pack(">IHHQQI", REQ, 0, 0, j, (j % 2) * 32 * MIB,
                              32 * MIB))
    bad.append(s)

lat = []
t0 = time.time()
g = tls_session()
for i in range(20):
    t = time.time()
    read(g, i * MIB, GOOD, 100 + i)
    lat.append(time.time() - t)
total = time.time() - t0
g.close()
time.sleep(1.5)
peak = vm_kib(PID, "VmHWM")
grow = (peak - base) // 1024
print("RSS before %d MiB, peak %d MiB (+%d MiB, budget %d MiB); good TLS "
      "READs: max %.3f s, total %.2f s" % (base // 1024, peak // 1024, grow,
                                           BUDGET, max(lat), total),
      flush=True)
check(grow < BUDGET + 96 + 4 * BAD, "server RSS grew by %d MiB" % grow)
check(max(lat) < 4, "a good TLS READ took %.2f s" % max(lat))
check(total < 20, "20 good TLS READs took %.2f s" % total)
for s in bad:
    s.close()

time.sleep(0.3)
s = tls_session()
read(s, 0, 65536, 7)
s.close()
sys.exit(1 if failures else 0)
