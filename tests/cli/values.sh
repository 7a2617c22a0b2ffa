#!/bin/bash
# values: option values out of range are usage errors (exit 2, the option
# named on stderr), never taken and turned into something else (issue 9
# findings 12 and 13): a negative or wrapping --ttl, a --listen port past
# 65535 or a bind to every address given as "0:PORT"; serve's numbers and
# timeouts the same way.
. "$(dirname "$0")/../lib.sh"

export VMCLONE_HOME=$T/home
vmc init -q || fail "vm-clone init"

# usage_err OPTION CMD...: CMD exits 2 and names OPTION on stderr.
usage_err() {
    local opt=$1
    shift
    expect_rc 2 vmc "$@"
    grep -qF -- "$opt" "$T/vmc.err" ||
        fail "vm-clone $* did not name $opt: $(head -c 300 "$T/vmc.err")"
}

ok vmc img create -q -f qcow2 t.qcow2 4M
ok vmc template import tmpl t.qcow2 -q

# finding 12: --ttl
for ttl in -1h -1 +5m 18446744073709551615s 18446744073709551615 \
    30500000000w 3000000000000000000d " 5m" 101y 0; do
    usage_err --ttl clone tmpl --name vmx -q --ttl "$ttl"
done
[ -z "$(vmc list --json | grep vmx)" ] || fail "a refused --ttl made a VM"
ok vmc clone tmpl --name vm1 -q --ttl 2h
ok vmc clone tmpl --name vm2 -q --ttl 5200w

# finding 13: --listen (refused before any target is opened or served)
for addr in :65536 :99999999999 127.0.0.1:70000 :-1 0:0 0:10809 :0x10 :000010809 \
    127.0.0.1: "" :; do
    usage_err --listen serve --listen "$addr" t.qcow2
done
# an explicit full address is what it takes to bind every address
expect_rc 2 vmc serve --listen 0.0.0.0:65536 t.qcow2

# serve: out-of-range numbers are usage errors that name the option
usage_err --max-connections serve --max-connections 0 t.qcow2
usage_err --max-connections serve --max-connections 99999999999999999999 t.qcow2
usage_err --idle-timeout serve --idle-timeout -1 t.qcow2
usage_err --idle-timeout serve --idle-timeout 99999999999999999999 t.qcow2
usage_err --request-timeout serve --request-timeout x t.qcow2
usage_err --handshake-timeout serve --handshake-timeout -5 t.qcow2
usage_err --reply-budget serve --reply-budget -1 t.qcow2
exit 0
