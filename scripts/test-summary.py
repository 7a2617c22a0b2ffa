#!/usr/bin/env python3
"""Print "N passed, N failed" from one or more meson testlog.json files.

usage: test-summary.py [--pass N] [--fail N] TESTLOG.json...
--pass/--fail add results of steps that are not meson tests (e.g. the
fuzzer smoke run, or a build that failed).  Skipped tests are listed on
a line of their own and counted in neither number. Exits 1 if any failed.
"""
import json
import sys

passed = failed = skipped = 0
failures = []
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "--pass":
        passed += int(args.pop(0))
        continue
    if a == "--fail":
        failed += int(args.pop(0))
        continue
    try:
        lines = open(a).read().splitlines()
    except OSError:
        print("no test log %s (build failed?)" % a)
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        r = t.get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append("%s (%s)" % (t.get("name", "?"), r))
if failures:
    print("failed: " + ", ".join(failures))
if skipped:
    print("%d skipped" % skipped)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
