#!/bin/bash
# lazy-libs: the optional libraries (Ceph's client libraries, libvirt,
# libpq, GnuTLS, libxml2, libarchive, libisofs) are not linked into
# vm-clone but loaded at their first use (the *-dl.c files on
# src/util/lazy-lib.c), so a command that needs none of them never loads
# them:
#  - the libraries the binary loads at start (ldd) include none of them;
#  - with broken stand-ins first in the library path, a store is made, a
#    template imported, a VM cloned and listed (they are never loaded:
#    ld.so's LD_DEBUG=files log of a clone and a list names none);
#  - a command that needs them fails cleanly (exit 1..127, a message that
#    says they cannot be loaded), never a crash or a dynamic-link error.
. "$(dirname "$0")/../lib.sh"
requires ldd --version
requires qemu-img --version

needed=$(ldd "$VMCLONE" | awk '{ print $1 }')
echo "$needed" | grep -q "^libc\.so" || fail "ldd did not list $VMCLONE's libraries: $needed"
for lib in librbd librados libvirt libpq libgnutls libxml2 libarchive libisofs; do
    echo "$needed" | grep -q "^$lib\." && fail "vm-clone loads $lib at start: $needed"
done

qemu-img create -q -f qcow2 t.qcow2 16M     # qemu-img needs GnuTLS itself

# broken stand-ins: dlopen() of any of them fails
mkdir broken
for so in librbd.so.1 librados.so.2 libvirt.so.0 libpq.so.5 libgnutls.so.30 \
          libxml2.so.2 libarchive.so.13 libisofs.so.6; do
    echo "not a library" > "broken/$so"
done
export LD_LIBRARY_PATH=$T/broken${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VMCLONE_HOME=$T/home

ok vmc init -q
ok vmc template import t t.qcow2 -q
ok vmc clone t --name vm1 -q
vmc list | grep -q "^vm1 " || fail "list: $(vmc list)"
# ... not even tried (a dlopen that fails is silent): ld.so's log of the
# clone and the list names none of them
LD_DEBUG=files LD_DEBUG_OUTPUT=$T/ld ok vmc clone t --name vm0 -q
LD_DEBUG=files LD_DEBUG_OUTPUT=$T/ld ok vmc list -q
tried=$(grep -l "$VMCLONE" ld.* | xargs grep -h "dynamically loaded by" |
        grep -oE "file=(librbd|librados|libvirt|libpq|libgnutls|libxml2|libarchive|libisofs)[^ ]*" | sort -u)
[ -z "$tried" ] || fail "a SQLite store's clone or list tried to load: $tried"
rm -f ld.*

expect_fail vmc pool add p --type rbd --rbd-pool x -q
err_matches "client libraries cannot be loaded.*librados"
expect_fail vmc vm define vm1
err_matches "libvirt is not installed or cannot be loaded"
VMCLONE_HOME=$T/pg expect_fail vmc init -q --catalog "host=$T/nowhere dbname=x"
err_matches "PostgreSQL's client library cannot be loaded.*libpq"
expect_fail vmc clone t --name vm2 --hostname h2 -q
err_matches "needs libisofs, which cannot be loaded"
echo "not an archive" > x.ova
expect_fail vmc template import app x.ova
err_matches "needs libarchive, which cannot be loaded"
mkdir ova
expect_fail vmc export vm1 --format ova --output ova
err_matches "libxml2 and libarchive, which cannot be loaded"
mkdir creds
expect_fail vmc serve vm1 --socket "$T/s.sock" --tls-creds "$T/creds"
err_matches "TLS needs GnuTLS, which cannot be loaded"
vmc list | grep -q "^vm1 " || fail "list after the failures: $(vmc list)"
vmc list | grep -q "^vm2 " && fail "vm2 is listed although its seed could not be made"
note "ok"
