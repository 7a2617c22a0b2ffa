#!/bin/bash
# tls-wire: the TLS rules of NBD proto.md at the wire level
# (tests/nbd/tls-wire.py, a raw client with Python's ssl): options before
# STARTTLS on a server that requires TLS, STARTTLS misuse, bytes behind
# STARTTLS, a client silent after STARTTLS, and nothing negotiated in the clear surviving STARTTLS
# (CVE-2021-3716). The log of serve -v names each refusal once.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
. "$TESTS_DIR/nbd/tls-lib.sh"
requires python3 --version

make_x509
qemu-img create -q -f qcow2 img.qcow2 16M
qemu-io -c 'write -P 0x5a 0 1M' img.qcow2 >/dev/null || fail "qemu-io write"
serve f -v --readonly --handshake-timeout 2 --tls-creds "$T/srv" img.qcow2
serve o -v --readonly --tls on --tls-creds "$T/srv" img.qcow2
PYTHONPATH=$TESTS_DIR/nbd python3 -B "$TESTS_DIR/nbd/tls-wire.py" "$T/f.sock" "$T/o.sock" \
    img.qcow2 "$T/cli" || fail "TLS wire checks failed: see above"
stop_server f
stop_server o

# expect_log N PATTERN: exactly N lines of the log match
expect_log() {
    local n
    n=$(grep -cE -- "$2" "$3")
    [ "$n" = "$1" ] || fail "$n log lines match '$2' (want $1); log:
$(cat "$3")"
}
expect_log 7 'refused: NBD_REP_ERR_TLS_REQD: TLS is required' f.err
expect_log 2 'NBD_OPT_EXPORT_NAME \(1\) refused: TLS is required' f.err
expect_log 1 'NBD_OPT_STARTTLS \(5\) refused: NBD_REP_ERR_INVALID: NBD_OPT_STARTTLS takes no data' f.err
expect_log 1 'NBD_OPT_STARTTLS \(5\) refused: NBD_REP_ERR_INVALID: TLS is already started' f.err
expect_log 1 'data after NBD_OPT_STARTTLS before the TLS handshake' f.err
expect_log 1 'TLS handshake failed: Connection timed out' f.err
expect_log 0 'TLS_REQD' o.err
expect_log 2 'TLS started' o.err
