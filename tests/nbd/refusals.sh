#!/bin/bash
# refusals: every request the server refuses is one line of its log
# (serve -v) naming the option or command by its NBD proto.md name and
# the reason. tests/nbd/refusals.py sends 12 refused requests (7 in the
# handshake, 5 in transmission) and checks the error replies; this script
# checks the log has exactly one matching line for each.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires python3 --version

qemu-img create -q -f qcow2 img.qcow2 64M
qemu-img create -q -f qcow2 ro.qcow2 4M
serve s -v img.qcow2
serve r -v --readonly ro.qcow2
python3 -B "$TESTS_DIR/nbd/refusals.py" "$T/s.sock" img.qcow2 "$T/r.sock" ro.qcow2 ||
    fail "refused requests got the wrong replies: see above"
stop_server s
stop_server r
cat s.err r.err > log

# expect_log PATTERN: exactly one line of the servers' log matches
expect_log() {
    local n
    n=$(grep -cE -- "$1" log)
    [ "$n" = 1 ] || fail "$n log lines match '$1' (want 1); log:
$(cat log)"
}
expect_log "NBD_OPT_GO \(7\) refused: NBD_REP_ERR_UNKNOWN: no export named 'no-such-export'"
expect_log "NBD_OPT_GO \(7\) refused: NBD_REP_ERR_UNKNOWN: no export named 'fake\?vm-clone: forged line'"
grep -q '^vm-clone: forged line' log && fail "a client split a log line: $(cat log)"
expect_log 'NBD_OPT_STARTTLS \(5\) refused: NBD_REP_ERR_POLICY: TLS is not supported'
expect_log 'unknown option \(99\) refused: NBD_REP_ERR_UNSUP'
expect_log 'NBD_OPT_LIST \(3\) refused: NBD_REP_ERR_INVALID: NBD_OPT_LIST takes no data'
expect_log 'NBD_OPT_SET_META_CONTEXT \(10\) refused: NBD_REP_ERR_INVALID: structured replies were not negotiated'
expect_log "NBD_OPT_EXPORT_NAME \(1\) refused: no export named 'no-export'"
expect_log 'NBD_CMD_READ \(0\) at 67108864\+4096 refused: NBD_EINVAL: range beyond the end of the export'
expect_log 'unknown command \(42\) at 0\+4096 refused: NBD_EINVAL: command not supported'
expect_log 'NBD_CMD_BLOCK_STATUS \(7\) at 0\+4096 refused: NBD_EINVAL: no metadata context'
expect_log 'NBD_CMD_FLUSH \(3\) at 512\+0 refused: NBD_EINVAL: offset and length of a flush must be 0'
expect_log 'NBD_CMD_WRITE \(1\) at 0\+512 refused: NBD_EPERM: the export is read-only'
# ... and nothing else was refused or failed
n=$(grep -cE '\([0-9]+\)( at [0-9]+\+[0-9]+)? (refused|failed):' log)
[ "$n" = 12 ] || fail "$n refusals logged, want 12; log:
$(cat log)"
