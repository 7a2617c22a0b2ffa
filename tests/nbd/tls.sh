#!/bin/bash
# tls: NBD over TLS (reliability test 20). Credentials are made here with
# certtool and psktool (tls-lib.sh); clients are libnbd's nbdinfo and
# nbdcopy and qemu-img/qemu-io with --object tls-creds-*.
#  1. X.509 (TLS required): the right client certificate reads the data,
#     writes land; a certificate of another CA, none at all, and a client
#     that does not trust the server's CA fail; a plain client is refused
#     with NBD_REP_ERR_TLS_REQD.
#  2. PSK: the right key reads and writes; a wrong key or an unknown user
#     fails; qemu-img info/convert and qemu-io with tls-creds-psk and
#     tls-creds-x509 (endpoint=client) read and write the export.
#  3. --tls on: TLS and plain clients both work; READ replies to the TLS
#     client are never spliced (strace), those to the plain client are.
#  4. the command line: plain TCP off loopback needs --insecure (or TLS
#     only); bad --tls values and missing credentials are refused.
# The wire-level rules (options before STARTTLS, nothing kept across it)
# are tls-wire.py's, run by tls-wire.sh.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
. "$TESTS_DIR/nbd/tls-lib.sh"
requires nbdcopy --version
requires qemu-io --version

make_x509
make_psk

qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 0x5a 0 3M' -c 'write -P 0xa5 40M 1M' img.qcow2 >/dev/null ||
    fail "qemu-io write"
qemu-img convert -O raw img.qcow2 want.raw

# reads NAME URI: nbdcopy of URI equals want.raw
reads() {
    nbdcopy "$2" "$1.raw" 2> "$1.log" || fail "$1: nbdcopy failed: $(cat "$1.log")"
    cmp -s "$1.raw" want.raw || fail "$1: the data read over TLS differs"
    rm -f "$1.raw"
}
# refused NAME URI: nbdinfo of URI fails
refused() {
    if nbdinfo "$2" > "$1.log" 2>&1; then
        fail "$1: nbdinfo succeeded: $(cat "$1.log")"
    fi
}

# ---- 1. X.509, TLS required (the default with credentials)
serve x -v --tls-creds "$T/srv" --listen 127.0.0.1:0 img.qcow2
u=$(tcp_uri x)
case $u in nbds://127.0.0.1:*/img.qcow2) ;; *) fail "URI printed: $u" ;; esac
grep -q "^nbds+unix:///img.qcow2?socket=" x.out || fail "no nbds+unix URI: $(cat x.out)"
nbdinfo "$u?tls-certificates=$T/cli" > x-info.log 2>&1 ||
    fail "nbdinfo with the right certificate: $(cat x-info.log)"
grep -q 'with TLS' x-info.log || fail "nbdinfo did not use TLS: $(cat x-info.log)"
grep -q 'export-size: 67108864' x-info.log || fail "size: $(cat x-info.log)"
reads x-tcp "$u?tls-certificates=$T/cli"
reads x-unix "nbds+unix:///img.qcow2?socket=$T/x.sock&tls-certificates=$T/cli&tls-verify-peer=false"
refused x-rogue "$u?tls-certificates=$T/rogue"
refused x-nocert "$u?tls-certificates=$T/nocert"
refused x-untrusted "$u?tls-certificates=$T/rogueca"
# a plain client: every option refused with TLS_REQD, nothing served
refused x-plain "nbd://127.0.0.1:${u#nbds://127.0.0.1:}"
grep -q 'NBD_OPT_GO (7) refused: NBD_REP_ERR_TLS_REQD' x.err ||
    fail "no TLS_REQD refusal logged: $(cat x.err)"
grep -q 'TLS handshake failed' x.err || fail "no failed TLS handshake logged"
# qemu-img and qemu-io, X.509 client endpoint
xobj="tls-creds-x509,id=tx,dir=$T/cli,endpoint=client"
port=${u#nbds://127.0.0.1:}
port=${port%%/*}
xopts="driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$port,export=img.qcow2,tls-creds=tx"
qemu-img info --object "$xobj" --image-opts "$xopts" > qi.log 2>&1 ||
    fail "qemu-img info over TLS (x509): $(cat qi.log)"
grep -q 'virtual size: 64 MiB' qi.log || fail "qemu-img info: $(cat qi.log)"
qemu-img convert --object "$xobj" --image-opts "$xopts" -O raw qx.raw 2> qc.log ||
    fail "qemu-img convert over TLS (x509): $(cat qc.log)"
cmp -s qx.raw want.raw || fail "qemu-img convert over TLS read other data"
rm -f qx.raw
qemu-io --object "$xobj" --image-opts "$xopts" -c 'write -P 0x77 8M 2M' \
    -c 'read -P 0x77 8M 2M' -c 'read -P 0x5a 0 3M' > qio.log 2>&1 ||
    fail "qemu-io over TLS: $(cat qio.log)"
grep -q 'Pattern verification failed' qio.log && fail "qemu-io read back other data"
qemu-io -c 'write -P 0x77 8M 2M' want.raw -f raw >/dev/null
stop_server x
qemu-img compare -f qcow2 -F raw img.qcow2 want.raw >/dev/null ||
    fail "writes over TLS did not land"
note "X.509: right certificate reads/writes; rogue/none/untrusted/plain refused"

# ---- 2. PSK
serve p -v --tls-psk "$T/psk/keys.psk" --listen 127.0.0.1:0 img.qcow2
u=$(tcp_uri p)
port=${u#nbds://127.0.0.1:}
port=${port%%/*}
pu="nbds://alice@127.0.0.1:$port/img.qcow2"
nbdinfo "$pu?tls-psk-file=$T/psk/keys.psk" > p-info.log 2>&1 ||
    fail "nbdinfo with the right key: $(cat p-info.log)"
grep -q 'with TLS' p-info.log || fail "nbdinfo did not use TLS: $(cat p-info.log)"
reads p-tcp "$pu?tls-psk-file=$T/psk/keys.psk"
reads p-unix "nbds+unix://alice@/img.qcow2?socket=$T/p.sock&tls-psk-file=$T/psk/keys.psk"
refused p-wrong "$pu?tls-psk-file=$T/wrongpsk/keys.psk"
refused p-bob "nbds://bob@127.0.0.1:$port/img.qcow2?tls-psk-file=$T/bob/keys.psk"
refused p-plain "nbd://127.0.0.1:$port/img.qcow2"
grep -q 'TLS started (TLS1.3, .*PSK user alice)' p.err || fail "no PSK session logged: $(cat p.err)"
# writes through libnbd: 32 MiB of random data over TLS (large replies and
# requests, several in flight)
head -c 32M /dev/urandom > up.raw
nbdcopy up.raw "$pu?tls-psk-file=$T/psk/keys.psk" 2> up.log ||
    fail "nbdcopy upload over TLS: $(cat up.log)"
nbdcopy "$pu?tls-psk-file=$T/psk/keys.psk" down.raw 2> down.log ||
    fail "nbdcopy download over TLS: $(cat down.log)"
cmp -s <(head -c 32M down.raw) up.raw || fail "the data written over TLS reads back other data"
# qemu-img with tls-creds-psk
pobj="tls-creds-psk,id=tp,dir=$T/psk,username=alice,endpoint=client"
popts="driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$port,export=img.qcow2,tls-creds=tp"
qemu-img info --object "$pobj" --image-opts "$popts" > pi.log 2>&1 ||
    fail "qemu-img info over TLS (psk): $(cat pi.log)"
grep -q 'virtual size: 64 MiB' pi.log || fail "qemu-img info (psk): $(cat pi.log)"
qemu-img convert --object "$pobj" --image-opts "$popts" -O raw qp.raw 2> qc.log ||
    fail "qemu-img convert over TLS (psk): $(cat qc.log)"
cmp -s qp.raw down.raw || fail "qemu-img convert (psk) read other data than nbdcopy"
wobj="tls-creds-psk,id=tp,dir=$T/wrongpsk,username=alice,endpoint=client"
if qemu-img info --object "$wobj" --image-opts "$popts" > pw.log 2>&1; then
    fail "qemu-img info with a wrong key succeeded"
fi
stop_server p
qemu-img compare -f qcow2 -F raw img.qcow2 qp.raw >/dev/null || fail "the image differs from what was read"
note "PSK: right key reads/writes; wrong key, unknown user, plain refused; qemu-img reads"

# ---- 3. --tls on: TLS offered, plain allowed
serve o -v --tls on --tls-psk "$T/psk/keys.psk" img.qcow2
nbdinfo "nbds+unix://alice@/img.qcow2?socket=$T/o.sock&tls-psk-file=$T/psk/keys.psk" \
    > o1.log 2>&1 || fail "--tls on: TLS client: $(cat o1.log)"
grep -q 'with TLS' o1.log || fail "--tls on: no TLS: $(cat o1.log)"
nbdinfo "nbd+unix:///img.qcow2?socket=$T/o.sock" > o2.log 2>&1 ||
    fail "--tls on: plain client: $(cat o2.log)"
grep -q 'without TLS' o2.log || fail "--tls on: plain client used TLS: $(cat o2.log)"
stop_server o

# ---- 3b. no splice over TLS: the zero-copy READ path is for plain sockets
# only (a read-only export: plain clients get spliced replies)
if strace -f -o /dev/null true 2>/dev/null; then
    # LeakSanitizer cannot stop the world under strace
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -e trace=splice -o splice.txt "$VMCLONE" serve --readonly --tls on \
        --tls-psk "$T/psk/keys.psk" --socket "$T/z.sock" --pid-file "$T/z.pid" \
        img.qcow2 > z.out 2> z.err &
    tracer=$!
    cleanup_fn "kill -TERM \$(cat $T/z.pid 2>/dev/null) 2>/dev/null; wait $tracer"
    for _ in $(seq 200); do
        [ -s z.pid ] && break
        sleep 0.05
    done
    [ -s z.pid ] || fail "serve under strace did not start: $(cat z.err)"
    nbdcopy "nbd+unix:///img.qcow2?socket=$T/z.sock" z-plain.raw || fail "plain nbdcopy"
    sleep 0.5
    n1=$(grep -c 'splice(' splice.txt)
    nbdcopy "nbds+unix://alice@/img.qcow2?socket=$T/z.sock&tls-psk-file=$T/psk/keys.psk" \
        z-tls.raw || fail "TLS nbdcopy"
    sleep 0.5
    n2=$(grep -c 'splice(' splice.txt)
    [ "$n1" -gt 0 ] || fail "plain READs were not spliced: the check cannot see splices"
    [ "$n2" = "$n1" ] || fail "$((n2 - n1)) splice calls served a TLS client"
    cmp -s z-plain.raw z-tls.raw || fail "TLS and plain clients read other data"
    kill -TERM "$(cat z.pid)"
    wait "$tracer" || fail "serve under strace exited non-zero: $(cat z.err)"
    note "READs: $n1 splices for the plain client, none for the TLS client"
else
    note "strace cannot trace here: the no-splice check is skipped"
fi

# ---- 4. the command line
expect_rc 1 vmc serve --listen 0.0.0.0:0 img.qcow2
grep -q "not a loopback address" vmc.err ||
    fail "plain TCP on 0.0.0.0 not refused with a reason: $(cat vmc.err)"
# ...but with --insecure, or with TLS required, it listens
for args in "--insecure" "--tls-psk $T/psk/keys.psk"; do
    # shellcheck disable=SC2086
    serve w $args --listen 0.0.0.0:0 img.qcow2
    stop_server w
done
# --tls on keeps plain clients possible: still refused off loopback
expect_rc 1 vmc serve --tls on --tls-psk "$T/psk/keys.psk" --listen 0.0.0.0:0 img.qcow2
expect_rc 2 vmc serve --tls only img.qcow2
expect_rc 2 vmc serve --tls on img.qcow2
expect_rc 2 vmc serve --tls maybe --tls-psk "$T/psk/keys.psk" img.qcow2
expect_rc 2 vmc serve --tls off --tls-creds "$T/srv" img.qcow2
expect_rc 1 vmc serve --tls-creds "$T/nope" img.qcow2
expect_rc 1 vmc serve --tls-creds "$T/cli" img.qcow2
echo "garbage" > bad.psk
expect_rc 1 vmc serve --tls-psk bad.psk img.qcow2
expect_rc 1 vmc serve --tls-psk "$T/none.psk" img.qcow2
note "command line: --insecure, --tls modes and bad credentials"
