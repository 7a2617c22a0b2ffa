#!/bin/bash
# build-fuzzer.sh - build the libFuzzer targets with clang-14 directly over
# the library sources (outside meson, which builds only the replayers).
#   usage: tests/fuzz/build-fuzzer.sh OUTDIR [TARGET...]
#   targets: fuzz-qcow2-open fuzz-nbd fuzz-ops fuzz-chain fuzz-vmdk
#            fuzz-vpc-open fuzz-vdi-open fuzz-vhdx-open (default: all)
#   -> OUTDIR/TARGET for each
#   usage: tests/fuzz/build-fuzzer.sh --syntax-only
#   -> compiles nothing to disk: checks that this source set and every
#      target compile (a meson test, so a new source file that only meson
#      knows how to leave out fails the suite, not just CI's fuzz stage)
set -eu
out=${1:?usage: build-fuzzer.sh OUTDIR [TARGET...] | --syntax-only}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-clang-14}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-qcow2-open fuzz-nbd fuzz-ops fuzz-chain fuzz-vmdk
                                    fuzz-vpc-open fuzz-vdi-open fuzz-vhdx-open)
# the optional backends (PostgreSQL, librbd) are left out (no target
# reaches a catalog or a pool): every src/ops/rbd*.c that meson builds only
# with librbd (src/ops/meson.build) gives way to the stubs rbd-none.c and
# rbd-image-none.c (rbd-spec.c, the spec parser, is built either way), and
# libvirt's calls compile to stubs (virt-dl.c is left out)
srcs=$(find "$root/src" -name '*.c' -not -path '*/cli/*' -not -name 'sql-pg.c' -not -name 'pq-dl.c' \
       \( -not -path '*/ops/rbd*.c' -o -name 'rbd-spec.c' -o -name 'rbd*-none.c' \) \
       -not -name 'virt-dl.c' | sort)
# the libraries meson links libvmclone with (meson.build); GnuTLS,
# libxml2, libarchive and libisofs are loaded by their *-dl.c wrappers
libs="$(pkg-config --libs zlib libzstd libcrypto json-c sqlite3) -lpthread"
cflags=$(pkg-config --cflags gnutls libxml-2.0 libarchive libisofs-1)
if [ "$out" = --syntax-only ]; then
    files=("${targets[@]/#/$root/tests/fuzz/}")
    # shellcheck disable=SC2086
    exec "$CC" -std=gnu11 -fsyntax-only -Werror -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $cflags \
        -I"$root/include" -I"$root/src" -I"$root/src/chain/engine" -I"$root/src/util" \
        $srcs "${files[@]/%/.c}"
fi
mkdir -p "$out"
for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    "$CC" -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $cflags \
        -I"$root/include" -I"$root/src" -I"$root/src/chain/engine" -I"$root/src/util" \
        $srcs "$root/tests/fuzz/$t.c" \
        -o "$out/$t" $libs
    echo "$out/$t"
done
