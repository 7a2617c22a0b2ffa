#!/usr/bin/env python3
"""Time shell commands side by side, interleaved round by round.

usage: abtime.py [--rounds N] [--title T] LABEL=CMD[::PREPARE] ...

Each round runs every command once (the order rotates every round so no
command always runs first); PREPARE runs untimed before its command.
Prints, per command, the median / min / max wall time of the whole
process and the median of the per-round ratios against the FIRST command.
A command that fails aborts the measurement with its output.
"""
import statistics
import subprocess
import sys
import time


def run(cmd, timed):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, cmd,
                                                 p.stderr.decode()[-2000:]))
    return dt


def fmt(s):
    return "%.1f ms" % (s * 1e3) if s < 10 else "%.2f s" % s


def main():
    args = sys.argv[1:]
    rounds, title, cmds = 10, "", []
    while args:
        a = args.pop(0)
        if a == "--rounds":
            rounds = int(args.pop(0))
        elif a == "--title":
            title = args.pop(0)
        else:
            label, _, rest = a.partition("=")
            cmd, _, prep = rest.partition("::")
            cmds.append((label, cmd, prep))
    if not cmds:
        sys.exit(__doc__)
    times = [[] for _ in cmds]
    for r in range(rounds):
        order = list(range(len(cmds)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            label, cmd, prep = cmds[i]
            if prep:
                run(prep, False)
            times[i].append(run(cmd, True))
    if title:
        print("\n### %s (%d rounds, interleaved)" % (title, rounds))
    w = max(len(c[0]) for c in cmds)
    print("| %-*s | median | min | max | ratio vs %s |" % (w, "command", cmds[0][0]))
    print("|%s|---|---|---|---|" % ("-" * (w + 2)))
    for i, (label, _, _) in enumerate(cmds):
        t = times[i]
        ratio = statistics.median(a / b for a, b in zip(t, times[0]))
        print("| %-*s | %s | %s | %s | %.2f |" % (
            w, label, fmt(statistics.median(t)), fmt(min(t)), fmt(max(t)),
            ratio))


main()
