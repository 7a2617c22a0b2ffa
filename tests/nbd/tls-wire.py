"""tls-wire.py - NBD over TLS at the wire level (proto.md "TLS support").

usage: tls-wire.py FORCED-SOCK ON-SOCK EXPORT CLIDIR

FORCED-SOCK is a server with TLS required (FORCEDTLS), ON-SOCK one with
TLS offered (--tls on); both have X.509 credentials whose CA signed the
client certificate in CLIDIR (ca-cert.pem, client-cert.pem,
client-key.pem). Checks:
 - FORCEDTLS, before STARTTLS: every option but STARTTLS and ABORT gets
   NBD_REP_ERR_TLS_REQD; EXPORT_NAME (which cannot be refused) ends the
   session; ABORT is acknowledged; STARTTLS with data is INVALID;
 - after STARTTLS nothing is refused with TLS_REQD, a second STARTTLS is
   INVALID, and the export is served over TLS;
 - bytes sent behind STARTTLS before the TLS handshake end the session
   (they must never be read as TLS or as options), and so does a client
   that does not start the TLS handshake within the handshake time;
 - nothing negotiated in the clear survives STARTTLS (CVE-2021-3716):
   structured replies and the metadata context are forgotten.
Stdlib only (ssl); shares nbdwire.py with the other raw clients."""
import socket
import ssl
import struct
import sys

from nbdwire import (ACK, ERR_INVALID, IHAVEOPT, META, REPMAGIC, SERVER,
                     SIMPLE, STRUCT, EINVAL, REQ, check, closed, failures,
                     recvall)

ERR_TLS_REQD = 0x80000005
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_SR, OPT_LIST_META, OPT_SET_META = 6, 7, 8, 9, 10
CMD_READ, CMD_BLOCK_STATUS = 0, 7

forced, on, export, clidir = sys.argv[1:5]
name = export.encode()


def connect(path, flags=3):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    recvall(s, 18)
    s.sendall(struct.pack(">I", flags))
    return s


def send_opt(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def replies(s, opt):
    """Reply types to @opt up to the final one (ACK or an error)."""
    out = []
    while True:
        m, o, t, ln = struct.unpack(">QIII", recvall(s, 20))
        recvall(s, ln)
        check(m == REPMAGIC and o == opt, "reply magic/option to %d" % opt)
        out.append(t)
        if t == ACK or t & 0x80000000:
            return out


def last(s, opt, data=b""):
    send_opt(s, opt, data)
    return replies(s, opt)[-1]


def go_data():
    return struct.pack(">I", len(name)) + name + struct.pack(">H", 0)


def meta_data(query=b"base:allocation"):
    return (struct.pack(">I", len(name)) + name + struct.pack(">I", 1) +
            struct.pack(">I", len(query)) + query)


def starttls(s):
    check(last(s, OPT_STARTTLS) == ACK, "STARTTLS: ACK")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(clidir + "/ca-cert.pem")
    ctx.load_cert_chain(clidir + "/client-cert.pem",
                        clidir + "/client-key.pem")
    return ctx.wrap_socket(s)


# ---- FORCEDTLS: options before STARTTLS
s = connect(forced)
for opt, data in ((OPT_SR, b""), (OPT_LIST, b""), (OPT_INFO, go_data()),
                  (OPT_GO, go_data()), (OPT_LIST_META, meta_data()),
                  (OPT_SET_META, meta_data()), (99, b"")):
    r = last(s, opt, data)
    check(r == ERR_TLS_REQD,
          "option %d before STARTTLS: TLS_REQD (got 0x%x)" % (opt, r))
check(last(s, OPT_STARTTLS, b"x") == ERR_INVALID, "STARTTLS with data: INVALID")
t = starttls(s)
send_opt(t, OPT_LIST)
check(SERVER in replies(t, OPT_LIST), "LIST after STARTTLS lists the export")
check(last(t, 99) != ERR_TLS_REQD, "unknown option after STARTTLS: not TLS_REQD")
check(last(t, OPT_STARTTLS) == ERR_INVALID, "second STARTTLS: INVALID")
check(last(t, OPT_GO, go_data()) == ACK, "GO over TLS: ACK")
t.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_READ, 7, 0, 4096))
m, err, ck = struct.unpack(">IIQ", recvall(t, 16))
check(m == SIMPLE and err == 0 and ck == 7, "READ over TLS: simple reply")
check(recvall(t, 4096) == b"\x5a" * 4096, "READ over TLS: the data")
t.close()

s = connect(forced)
check(last(s, OPT_ABORT) == ACK, "ABORT before STARTTLS: ACK")
s.close()

s = connect(forced)
send_opt(s, OPT_EXPORT_NAME, name)
check(closed(s), "EXPORT_NAME before STARTTLS: session ended")
s.close()

s = connect(forced, flags=0)        # not fixed newstyle
send_opt(s, OPT_EXPORT_NAME, name)
check(closed(s), "EXPORT_NAME without fixed newstyle (FORCEDTLS): ended")
s.close()

# bytes behind STARTTLS before the handshake: dropped after the ACK
s = connect(forced)
s.sendall(struct.pack(">QII", IHAVEOPT, OPT_STARTTLS, 0) +
          struct.pack(">QII", IHAVEOPT, OPT_GO, len(go_data())) + go_data())
check(replies(s, OPT_STARTTLS)[-1] == ACK, "pipelined STARTTLS: ACK")
check(closed(s), "options pipelined behind STARTTLS: session ended")
s.close()

# a client that never starts the TLS handshake after the ACK is dropped
# at the handshake deadline (the server runs with --handshake-timeout 2)
s = connect(forced)
check(last(s, OPT_STARTTLS) == ACK, "silent STARTTLS: ACK")
check(closed(s, timeout=8), "no TLS handshake: dropped at the deadline")
s.close()

# ---- CVE-2021-3716: state negotiated in the clear is forgotten
s = connect(on)
check(last(s, OPT_SR) == ACK, "plain SR on a --tls on server: ACK")
send_opt(s, OPT_SET_META, meta_data())
check(META in replies(s, OPT_SET_META), "plain SET_META_CONTEXT: selected")
t = starttls(s)
check(last(t, OPT_SET_META, meta_data()) == ERR_INVALID,
      "SET_META_CONTEXT after STARTTLS without SR: INVALID (SR forgotten)")
check(last(t, OPT_GO, go_data()) == ACK, "GO after STARTTLS")
t.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_READ, 9, 0, 512))
m, err, ck = struct.unpack(">IIQ", recvall(t, 16))
check(m == SIMPLE and err == 0, "READ after STARTTLS: simple reply (SR forgotten)")
recvall(t, 512)
t.close()

s = connect(on)
check(last(s, OPT_SR) == ACK, "plain SR: ACK")
send_opt(s, OPT_SET_META, meta_data())
check(META in replies(s, OPT_SET_META), "plain SET_META_CONTEXT: selected")
t = starttls(s)
check(last(t, OPT_SR) == ACK, "SR again after STARTTLS: ACK (not 'already')")
check(last(t, OPT_GO, go_data()) == ACK, "GO after STARTTLS")
t.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_BLOCK_STATUS, 11, 0, 4096))
m, fl, ty, ck, ln = struct.unpack(">IHHQI", recvall(t, 20))
body = recvall(t, ln)
check(m == STRUCT and ty & 0x8000 and struct.unpack(">I", body[:4])[0] == EINVAL,
      "BLOCK_STATUS after STARTTLS: EINVAL (meta context forgotten)")
t.close()

# a plain client of --tls on is served without TLS
s = connect(on)
check(last(s, OPT_GO, go_data()) == ACK, "--tls on: plain GO: ACK")
s.close()

if failures:
    sys.exit(1)
print("tls-wire: all checks passed")
