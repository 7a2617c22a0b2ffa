#!/bin/bash
# random-io: the differential random test (tests/unit/test-random-io.c)
# with QEMU as the judge: after the run, for 512 B, 64 KiB and extended-L2
# 128 KiB clusters, `qemu-img check` of the clone (and of the base we
# created) exits 0, `qemu-img compare` says the clone equals the raw
# shadow, our map agrees with qemu-img's, and the base file's sha256 is
# unchanged by the whole run.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires python3 -c 'import json'
RIO=${TEST_RANDOM_IO:?TEST_RANDOM_IO not set}

while read -r name args; do
    note "$name: $args"
    mkdir "$name"
    # shellcheck disable=SC2086
    "$RIO" $args --dir "$T/$name" || fail "test-random-io $args failed"
    qemu_check "$name/base.qcow2"
    qemu_check "$name/clone.qcow2"
    qemu_same "$name/clone.qcow2" "$name/shadow.raw"
    qemu_map "$name/clone.qcow2" > q.map
    vmc_map "$name/clone.qcow2" > o.map
    diff -u q.map o.map >&2 || fail "$name: map differs from qemu-img's"
    # the base survived unchanged (sha256 before/after a second, reading pass)
    s=$(sha "$name/base.qcow2")
    ok vmc img convert -f qcow2 -O raw "$name/clone.qcow2" "$name/view.raw"
    same_bytes "$name/view.raw" "$name/shadow.raw"
    [ "$(sha "$name/base.qcow2")" = "$s" ] || fail "$name: reading the clone changed the base"
    rm -rf "$name"
done <<'LIST'
c512 --cluster-size 512 --ops 3000
c64k --cluster-size 65536 --ops 4000
extl2-128k --cluster-size 131072 --extended-l2 --ops 4000
LIST
note "ok"
