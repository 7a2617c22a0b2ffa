# tests/nbd/tls-lib.sh - credentials for the NBD-over-TLS tests; sourced
# after nbd-lib.sh. Everything is made in the test's scratch directory.
#
#   make_x509          $T/ca (the CA), $T/srv (qemu's server layout:
#                      ca-cert.pem, server-cert.pem, server-key.pem for
#                      127.0.0.1 and localhost), $T/cli (ca-cert.pem,
#                      client-cert.pem, client-key.pem signed by the CA),
#                      $T/rogue (a client certificate of another CA),
#                      $T/nocert (only ca-cert.pem)
#   make_psk           $T/psk/keys.psk (user alice), $T/wrongpsk/keys.psk
#                      (alice, another key), $T/bob/keys.psk (user bob)
#   tcp_uri NAME       the nbds://127.0.0.1:PORT/EXPORT URI server NAME
#                      printed

requires certtool --version
requires psktool --version

# _cert DIR NAME CA-DIR TEMPLATE-LINES: a key and a certificate signed by
# the CA in CA-DIR (ca-cert.pem, ca-key.pem)
_cert() {
    local dir=$1 name=$2 ca=$3
    shift 3
    printf '%s\n' "$@" > "$dir/$name.info"
    certtool --generate-privkey --outfile "$dir/$name-key.pem" >/dev/null 2>&1 ||
        fail "certtool: key $name"
    certtool --generate-certificate --load-privkey "$dir/$name-key.pem" \
        --load-ca-certificate "$ca/ca-cert.pem" --load-ca-privkey "$ca/ca-key.pem" \
        --template "$dir/$name.info" --outfile "$dir/$name-cert.pem" >/dev/null 2>&1 ||
        fail "certtool: certificate $name"
}

# _ca DIR CN: a self-signed CA in DIR
_ca() {
    mkdir -p "$1"
    printf '%s\n' "cn = $2" ca cert_signing_key "expiration_days = 30" > "$1/ca.info"
    certtool --generate-privkey --outfile "$1/ca-key.pem" >/dev/null 2>&1 ||
        fail "certtool: CA key"
    certtool --generate-self-signed --load-privkey "$1/ca-key.pem" \
        --template "$1/ca.info" --outfile "$1/ca-cert.pem" >/dev/null 2>&1 ||
        fail "certtool: CA certificate"
}

make_x509() {
    _ca "$T/ca" "vmclone test CA"
    _ca "$T/rogueca" "another CA"
    mkdir -p "$T/srv" "$T/cli" "$T/rogue" "$T/nocert"
    _cert "$T/srv" server "$T/ca" "cn = localhost" "dns_name = localhost" \
        "ip_address = 127.0.0.1" tls_www_server encryption_key signing_key \
        "expiration_days = 30"
    _cert "$T/cli" client "$T/ca" "cn = client" tls_www_client signing_key \
        encryption_key "expiration_days = 30"
    _cert "$T/rogue" client "$T/rogueca" "cn = client" tls_www_client \
        signing_key encryption_key "expiration_days = 30"
    cp "$T/ca/ca-cert.pem" "$T/srv/"
    cp "$T/ca/ca-cert.pem" "$T/cli/"
    cp "$T/ca/ca-cert.pem" "$T/rogue/"
    cp "$T/ca/ca-cert.pem" "$T/nocert/"
}

make_psk() {
    mkdir -p "$T/psk" "$T/wrongpsk" "$T/bob"
    psktool -u alice -p "$T/psk/keys.psk" >/dev/null 2>&1 || fail "psktool"
    psktool -u alice -p "$T/wrongpsk/keys.psk" >/dev/null 2>&1 || fail "psktool"
    psktool -u bob -p "$T/bob/keys.psk" >/dev/null 2>&1 || fail "psktool"
    cmp -s "$T/psk/keys.psk" "$T/wrongpsk/keys.psk" && fail "psktool made one key twice"
    return 0
}

tcp_uri() {
    grep -m1 '^nbds://' "$T/$1.out" || fail "server $1 printed no nbds:// URI"
}
