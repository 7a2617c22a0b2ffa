#!/usr/bin/env python3
"""flood.py MODE SOCKET PID - connection floods (reliability test 19,
issue 9 finding 5). Stdlib only.

handshake: the server runs with --max-connections 50 and
  --handshake-timeout 3. 200 connections that never negotiate: those
  beyond the cap are closed at once, the others are dropped after the
  handshake timeout; a legitimate client gets in within 1.5 s of the
  flood (it takes the place of the oldest idle handshake) and again at
  once later; no file is opened for any of them (the regular files open
  in the server stay the same: exports are opened at start, never per
  connection).
idle: the server runs with --request-timeout 1 --idle-timeout 6 and the
  default cap of 100. 90 clients choose the export and go idle, 10 send
  half a request header: the half-header ones are dropped after 1 s, 10
  more idle ones fill the cap again; 2 s after the start a new client is
  served at once (it takes the place of the client idle longest); the
  idle ones are dropped after 6 s, a client that keeps working is not.
"""
import os
import socket
import sys
import time

from nbdwire import (REQ, failures, check, closed, session, read_req,
                     read_reply)

MODE, PATH, PID = sys.argv[1], sys.argv[2], int(sys.argv[3])


def open_files():
    """Targets of the server's descriptors that are files."""
    out = set()
    d = "/proc/%d/fd" % PID
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if t.startswith("/"):
            out.add(t)
    return out


def sockets():
    d = "/proc/%d/fd" % PID
    n = 0
    for fd in os.listdir(d):
        try:
            n += os.readlink(os.path.join(d, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def works(s, cookie):
    read_req(s, 0, 65536, cookie=cookie)
    err, ck, _ = read_reply(s, 65536)
    return err == 0 and ck == cookie


def legit(deadline):
    """Connect (again after each refusal) until served or @deadline."""
    tries = 0
    while time.time() < deadline:
        tries += 1
        try:
            s = session(PATH, timeout=5)
            ok = works(s, 9)
            s.close()
            return ok, tries
        except (EOFError, OSError):
            time.sleep(0.05)
    return False, tries


def flood_handshakes():
    files = open_files()
    t0 = time.time()
    conns, unconnected = [], 0
    for i in range(200):
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(2)
        try:
            c.connect(PATH)
            conns.append(c)
        except OSError:            # the listen backlog is full
            unconnected += 1
            c.close()
    greeted, refused = [], unconnected
    for c in conns:
        try:
            b = c.recv(18)
        except (socket.timeout, OSError):
            b = b""
        if len(b) == 18:
            greeted.append(c)
        else:
            refused += 1
            c.close()
    nsock = sockets()
    print("flood: %d greeted, %d refused (%d of them at connect), %d sockets "
          "in the server" % (len(greeted), refused, unconnected, nsock),
          flush=True)
    check(len(greeted) <= 50, "%d connections beyond the cap" % len(greeted))
    check(refused >= 150, "only %d connections refused" % refused)
    check(nsock <= 55, "the server holds %d sockets" % nsock)
    check(open_files() == files, "files opened during the flood")

    ok, tries = legit(t0 + 1.5)
    dt = time.time() - t0
    print("legitimate client served after %.2f s (%d tries)" % (dt, tries),
          flush=True)
    check(ok, "no legitimate client served in the first 1.5 s")
    time.sleep(0.6)
    ok, tries = legit(time.time() + 1)
    check(ok and tries == 1, "legitimate client refused during the flood")

    # the flood's handshakes end by the timeout (3 s) at the latest
    left = [c for c in greeted if not closed(c, max(0.1, t0 + 4.5 - time.time()))]
    print("%d flood connections still open after %.1f s"
          % (len(left), time.time() - t0), flush=True)
    check(not left, "%d idle handshakes not dropped" % len(left))
    check(open_files() == files, "files opened by the flood")
    for c in greeted:
        c.close()
    ok, tries = legit(time.time() + 2)
    check(ok, "no legitimate client served after the flood")


def flood_idle():
    t0 = time.time()
    idle = [session(PATH) for i in range(90)]
    half = [session(PATH) for i in range(10)]
    for s in half:
        s.sendall(bytes.fromhex("25609513") + bytes(8))   # 12 of 28 bytes
    t_half = time.time()
    for s in half:
        check(closed(s, 3), "half a request header not dropped")
    dt = time.time() - t_half
    print("half headers dropped after %.2f s" % dt, flush=True)
    check(dt < 2.5, "half headers dropped after %.2f s" % dt)
    idle += [session(PATH) for i in range(10)]     # at the cap again

    time.sleep(max(0, t0 + 2.3 - time.time()))
    try:
        s = session(PATH)
        ok = works(s, 5)
    except (EOFError, OSError):
        ok = False
    print("new client beside 100 idle ones: %s" % ("served" if ok else
          "refused"), flush=True)
    check(ok, "a new client was locked out by idle clients")

    # idle clients go at --idle-timeout (6 s), the working one stays
    t1 = time.time()
    while time.time() - t1 < 6.5:
        check(works(s, 6), "a working client failed")
        time.sleep(0.3)
    left = [c for c in idle if not closed(c, 0.2)]
    print("%d idle clients still open after %.1f s" % (len(left),
          time.time() - t0), flush=True)
    check(not left, "%d idle clients not dropped" % len(left))
    check(works(s, 7), "the working client was dropped")
    s.close()


{"handshake": flood_handshakes, "idle": flood_idle}[MODE]()
sys.exit(1 if failures else 0)
