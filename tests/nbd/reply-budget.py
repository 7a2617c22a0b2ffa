#!/usr/bin/env python3
"""reply-budget.py SOCKET PID BUDGET_MIB - clients that queue 32 MiB READs
and never read the replies (issue 9, finding 4).

BAD clients each choose the export and send 8 READs of 32 MiB, then never
read. Meanwhile one good client reads 1 MiB at a time. Pass: the server's
peak RSS (VmHWM) grows by less than the budget plus 96 MiB (without a
server-wide budget every bad client holds 64 MiB), every good READ is
answered within 4 s and all of them within 20 s (generous: ASan, a
loaded CI host), and a new client is
served afterwards. Stdlib only.
"""
import socket
import sys
import threading
import time

from nbdwire import failures, check, session, read_req, read_reply, vm_kib

PATH, PID, BUDGET = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BAD, MIB = 12, 1 << 20

base = vm_kib(PID, "VmRSS")
bad = []
for i in range(BAD):
    s = session(PATH)
    for j in range(8):
        read_req(s, (j % 2) * 32 * MIB, 32 * MIB, cookie=j)
    bad.append(s)

lat = []
t0 = time.time()
g = session(PATH)
for i in range(20):
    t = time.time()
    read_req(g, i * MIB, MIB, cookie=100 + i)
    err, ck, data = read_reply(g, MIB)
    lat.append(time.time() - t)
    check(err == 0 and ck == 100 + i and len(data) == MIB,
          "good READ %d: error %d cookie %d" % (i, err, ck))
total = time.time() - t0
g.close()
time.sleep(1.5)                  # the bad clients' reads are all queued
peak = vm_kib(PID, "VmHWM")
grow = (peak - base) // 1024
print("RSS before %d MiB, peak %d MiB (+%d MiB, budget %d MiB); good READs: "
      "max %.3f s, total %.2f s" % (base // 1024, peak // 1024, grow, BUDGET,
                                     max(lat), total), flush=True)
check(grow < BUDGET + 96, "server RSS grew by %d MiB" % grow)
check(max(lat) < 4, "a good READ took %.2f s" % max(lat))
check(total < 20, "20 good READs took %.2f s" % total)
for s in bad:
    s.close()

time.sleep(0.3)
s = session(PATH)
read_req(s, 0, 65536, cookie=7)
err, ck, _ = read_reply(s, 65536)
check(err == 0 and ck == 7, "a new client after the bad ones")
s.close()
sys.exit(1 if failures else 0)
