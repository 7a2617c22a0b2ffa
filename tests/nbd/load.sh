#!/bin/bash
# load: load with durability (reliability.md §6 test 22).
# 4 clients (tests/nbd/load.py) on 4 linked clones of one catalogued
# template, served by one `vm-clone serve` running under strace -f; mixed
# 4 KiB..1 MiB reads/writes with a flush about every 10th request for
# LOAD_SECONDS (default 15; 60 by hand). Pass:
#  - 0 client errors, every read equal to the client's shadow;
#  - afterwards every clone's guest view equals its client's shadow
#    (qemu-img compare), qemu-img check clean, the template unchanged;
#  - server RSS flat after warm-up: the highest VmRSS sampled in the last
#    two thirds of the run exceeds the highest of the first third by at
#    most LOAD_RSS_SLACK_KB (default 16384 KiB);
#  - every flush reply is preceded by an fsync/fdatasync of that client's
#    image completing after its last write was answered
#    (tests/helpers/flush-order.py over the strace log).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires qemu-io --version
requires strace -V
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3 nbd module missing"
secs=${LOAD_SECONDS:-15}
slack=${LOAD_RSS_SLACK_KB:-16384}
# ASan's quarantine keeps freed memory resident (up to 256 MiB): under a
# sanitizer build the RSS is reported, not bounded
grep -q __asan_init "$VMCLONE" 2>/dev/null && slack=${LOAD_RSS_SLACK_KB:-1048576}
# strace needs ptrace of its own child: refused in some containers
strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here"

export VMCLONE_HOME=$T/home
export TMPDIR=$T/tmp
unset XDG_RUNTIME_DIR
mkdir -p "$TMPDIR"
vmc init -q || fail "vm-clone init"

qemu-img create -q -f qcow2 tpl.qcow2 32M || fail "create template"
qemu-io -f qcow2 -c 'write -P 0x5a 0 8M' -c 'write -P 0xa5 20M 3M' tpl.qcow2 > /dev/null ||
    fail "write template"
raw_of tpl.qcow2 tpl.raw
ok vmc template import tpl tpl.qcow2 -q
imgs=()
for i in 1 2 3 4; do
    ok vmc clone tpl --linked --name vm$i -q
    vmc info vm$i --json > vm$i.json || fail "info vm$i"
    imgs+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["path"])' vm$i.json)")
done
tsums=$(sha256sum "$VMCLONE_HOME"/*/copy-*.qcow2)

# LeakSanitizer stops the world with ptrace, which fails under strace: no
# leak check for this server (the other nbd tests run serve with it)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
strace -f -y -xx -s 64 -e trace=fsync,fdatasync,sendmsg -o trace.txt \
    "$VMCLONE" serve --socket "$T/s.sock" --pid-file "$T/s.pid" vm1 vm2 vm3 vm4 \
    > s.out 2> s.err &
tracer=$!
cleanup_fn "kill -TERM \$(cat $T/s.pid); wait $tracer"
for _ in $(seq 200); do
    [ -s s.pid ] && break
    kill -0 $tracer 2>/dev/null || fail "serve exited early: $(cat s.err)"
    sleep 0.05
done
[ -s s.pid ] || fail "serve did not start"
spid=$(cat s.pid)

# RSS sampler
( while kill -0 "$spid" 2>/dev/null; do
      awk '/^VmRSS/ { print $2 }' /proc/"$spid"/status 2>/dev/null
      sleep 0.25
  done > rss.txt ) &
sampler=$!

# clients connect one after the other (flush-order.py maps sockets to
# clients by that order), then all run at once
pids=()
for i in 1 2 3 4; do
    /usr/bin/python3 "$TESTS_DIR/nbd/load.py" "$(uri s vm$i/disk0)" tpl.raw shadow$i.raw \
        "$i" "$secs" cookies$i.log > client$i.log 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do
        [ -e cookies$i.log ] && break
        sleep 0.05
    done
done
for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}" || fail "client $i: $(tail -3 client$i.log)"
    note "client $i: $(cat client$i.log)"
done
server_pid_rss_end=$(tail -1 rss.txt)
kill -TERM "$spid"
wait $tracer || fail "serve exited with an error: $(tail -5 s.err)"
wait $sampler
grep -qE 'Sanitizer|runtime error:' s.err && fail "sanitizer report from serve: $(cat s.err)"

# RSS flat after warm-up
python3 - rss.txt "$slack" <<'PY' || fail "server RSS grew after warm-up"
import sys
v = [int(x) for x in open(sys.argv[1]) if x.strip()]
n = len(v) // 3
warm, rest = max(v[:n]), max(v[n:])
print("# RSS KiB: %d samples, warm-up max %d, later max %d, end %d, slack %s"
      % (len(v), warm, rest, v[-1], sys.argv[2]))
sys.exit(0 if rest - warm <= int(sys.argv[2]) else 1)
PY

# images equal their shadows; check clean; template untouched
for i in 1 2 3 4; do
    qemu-img compare -q -f raw -F qcow2 shadow$i.raw "${imgs[$((i - 1))]}" ||
        fail "vm$i differs from its client's shadow"
    qemu_check "${imgs[$((i - 1))]}"
done
[ "$(sha256sum "$VMCLONE_HOME"/*/copy-*.qcow2)" = "$tsums" ] || fail "the template copy changed"

# an fsync/fdatasync before every flush reply
args=()
for i in 1 2 3 4; do
    args+=("$(basename "${imgs[$((i - 1))]}"):cookies$i.log")
done
/usr/bin/python3 "$TESTS_DIR/helpers/flush-order.py" trace.txt "${args[@]}" ||
    fail "a flush was answered before the data was synced"
