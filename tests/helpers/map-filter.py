#!/usr/bin/env python3
"""Normalise `map --output=json` (qemu-img shape) for comparison.

Reads a JSON array of extents on stdin, drops host offsets (layout is not
guest-visible), merges adjacent extents that agree on depth/present/zero/
data, and prints one extent per line:  start length depth present zero data
Exits 1 (with a message) if the input is not a well-formed extent list.
"""
import json
import sys


def main():
    try:
        extents = json.load(sys.stdin)
    except ValueError as e:
        sys.exit("map-filter: not JSON: %s" % e)
    if not isinstance(extents, list):
        sys.exit("map-filter: not a JSON array")
    out = []
    expect = 0
    for e in extents:
        try:
            key = (int(e["depth"]), bool(e["present"]), bool(e["zero"]),
                   bool(e["data"]))
            start, length = int(e["start"]), int(e["length"])
        except (KeyError, TypeError, ValueError) as x:
            sys.exit("map-filter: bad extent %r: %s" % (e, x))
        if start != expect or length <= 0:
            sys.exit("map-filter: extents not contiguous at %d" % start)
        expect = start + length
        if out and out[-1][2:] == list(key):
            out[-1][1] += length
        else:
            out.append([start, length] + list(key))
    for x in out:
        print("%d %d %d %s %s %s" % (x[0], x[1], x[2], str(x[3]).lower(),
                                     str(x[4]).lower(), str(x[5]).lower()))


main()
