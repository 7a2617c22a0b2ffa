#!/bin/bash
# malformed: hostile traffic (tests/nbd/malformed.py: bad magics, unknown
# flags, oversized names and options, out-of-range and overflowing
# requests, unknown commands, disconnects mid-payload, EOF at every byte
# of a handshake, idle connections beyond the cap) while a good client
# works on the same export: the good client sees no error, the server
# survives and exits cleanly, the image passes qemu-img check.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires python3 --version

qemu-img create -q -f qcow2 img.qcow2 64M
serve s --max-connections 16 --handshake-timeout 2 img.qcow2
python3 -B "$TESTS_DIR/nbd/malformed.py" "$T/s.sock" img.qcow2 || fail "malformed traffic: see above"
server_alive s
stop_server s
qemu_check img.qcow2
