#!/bin/bash
# flood: connection floods (tests/nbd/flood.py; reliability test 19,
# issue 9 finding 5): 200 connections that never negotiate, and 100 that
# negotiate and go idle or send half a header, cannot lock a client out;
# the cap, the handshake, request and idle timeouts drop them; no export
# is opened for a connection (the server log names one "serving export"
# per client that got to NBD_OPT_GO).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires python3 --version

qemu-img create -q -f qcow2 img.qcow2 8M
serve f -v --max-connections 50 --handshake-timeout 3 img.qcow2
python3 -B "$TESTS_DIR/nbd/flood.py" handshake "$T/f.sock" "$(cat "$T/f.pid")" ||
    fail "handshake flood: see above"
server_alive f
stop_server f
n=$(grep -c "serving export" "$T/f.err")
note "connections that reached GO: $n"
[ "$n" -le 10 ] || fail "$n connections reached GO"

serve g -v --request-timeout 1 --idle-timeout 6 img.qcow2
python3 -B "$TESTS_DIR/nbd/flood.py" idle "$T/g.sock" "$(cat "$T/g.pid")" ||
    fail "idle flood: see above"
server_alive g
stop_server g
grep -q "request not received whole" "$T/g.err" || fail "no request timeout in the log"
grep -q "dropped to make room" "$T/g.err" || fail "no eviction in the log"
qemu_check img.qcow2
