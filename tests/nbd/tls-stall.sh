#!/bin/bash
# tls-stall: TLS clients that queue big READs and never read their replies
# cannot make the server hold more than its --reply-budget, are dropped,
# and a good TLS client keeps normal latency (tests/nbd/tls-stall.py): the
# TLS transport keeps the write timeout and stall bookkeeping of the plain
# socket (issue 9 finding 4 over TLS).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
. "$TESTS_DIR/nbd/tls-lib.sh"
requires python3 --version

# an ASan build keeps freed memory in quarantine
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
make_x509
qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 0x11 0 64M' img.qcow2 >/dev/null || fail "qemu-io write"
serve s -v --reply-budget 128M --tls-creds "$T/srv" img.qcow2
PYTHONPATH=$TESTS_DIR/nbd python3 -B "$TESTS_DIR/nbd/tls-stall.py" "$T/s.sock" \
    "$(cat "$T/s.pid")" 128 "$T/cli" ||
    fail "reply budget over TLS: see above; server log:
$(grep -v 'accepted\|TLS started\|serving' s.err | tail -30)"
server_alive s
stop_server s
grep -q 'dropped: its replies are not read' s.err ||
    fail "no stalled TLS client was dropped: $(tail -20 s.err)"
qemu_check img.qcow2
