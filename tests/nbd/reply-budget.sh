#!/bin/bash
# reply-budget: clients that queue big READs and never read the replies
# cannot make the server hold more than its --reply-budget, and a
# well-behaved client keeps normal latency (tests/nbd/reply-budget.py;
# issue 9 finding 4).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires python3 --version

# an ASan build keeps freed memory in quarantine (256 MiB by default),
# which would count as the server's RSS
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
qemu-img create -q -f qcow2 img.qcow2 64M
serve s --reply-budget 128M img.qcow2
python3 -B "$TESTS_DIR/nbd/reply-budget.py" "$T/s.sock" "$(cat "$T/s.pid")" 128 ||
    fail "reply budget: see above"
server_alive s
stop_server s
qemu_check img.qcow2
