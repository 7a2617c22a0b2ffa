#!/bin/bash
# install-deps.sh - install what vmclone needs on Debian 12 (as root, via
# apt-get), skipping packages that are already installed.
#   meson ninja-build pkg-config gcc   build
#   zlib1g-dev                         deflate-compressed qcow2 clusters
#   libssl-dev                         SHA-256 (libcrypto) for sealed templates
#   libzstd-dev                        zstd-compressed qcow2 clusters
#   libjson-c-dev                      --output=json
#   qemu-utils                         qemu-img/qemu-io: the test oracle
#   clang-14                           libFuzzer build of the fuzz target
#   python3                            test helpers (JSON filters, patching)
#   python3-jsonschema                 validates --json output against docs/schema (tests/cli)
#   libnbd-bin python3-libnbd          NBD clients (nbdinfo, nbdcopy, nbdsh) for tests/nbd
#   qemu-system-x86                    guest boot tests (tests/nbd/boot.sh)
#   libsqlite3-dev sqlite3             the catalog (src/catalog), its tests
#   libvirt-clients                    virt-xml-validate for 'vm xml' (tests/catalog)
#   xfsprogs                           an XFS reflink=1 loop mount (tests/ops/clone-reflink.sh)
#   fio                                4 KiB random reads over NBD (bench/bench-nbd.sh)
#   groff-base                         renders docs/vm-clone.1 in tests/docs
#   strace                             fdatasync-before-flush-reply check (tests/nbd/load.sh)
#   libgnutls28-dev gnutls-bin         NBD over TLS (src/nbd/tls.c); certtool/psktool for tests/nbd/tls*
#   libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu   vm define / clone --define (src/virt), tests/virt's private libvirtd
#   postgresql libpq-dev               the PostgreSQL catalog backend (src/catalog/sql-pg.c), tests/catalog-pg
#   pgbouncer                          a session-pooling proxy before PostgreSQL: tests/catalog-pg/pooler.sh, bench/bench-catalog-scale.sh
#   libxml2-dev libarchive-dev         OVF descriptors and OVA archives (src/catalog/ovf*.c, appliance.c)
#   ceph-mon ceph-osd ceph-common      a throwaway Ceph cluster for tests/rbd (tests/helpers/ceph.sh)
#   librbd-dev librados-dev            rbd pools (src/ops/rbd.c; no .pc files: meson finds -lrbd -lrados)
#   qemu-block-extra                   QEMU's rbd driver: qemu-img over rbd: in tests/rbd, 'vm xml'/'start' rbd drives
#   libisofs-dev genisoimage           cloud-init seed ISOs (src/catalog/seed.c); isoinfo for tests/ephemeral
set -u
pkgs="meson ninja-build pkg-config gcc zlib1g-dev libssl-dev libzstd-dev libjson-c-dev qemu-utils clang-14 python3 python3-jsonschema libnbd-bin python3-libnbd qemu-system-x86 libsqlite3-dev sqlite3 libvirt-clients xfsprogs fio groff-base strace libgnutls28-dev gnutls-bin postgresql libpq-dev pgbouncer libxml2-dev libarchive-dev libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu ceph-mon ceph-osd ceph-common librbd-dev librados-dev qemu-block-extra libisofs-dev genisoimage ${EXTRA_PKGS:-}"
missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing packages:$missing" >&2
    echo "run as root, or: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    { echo "apt-get install failed" >&2; exit 1; }
