#!/bin/bash
# build-fuzzer.sh - build the libFuzzer target with clang-14 directly over
# the library sources (outside meson, which builds only the replayer).
#   usage: tests/fuzz/build-fuzzer.sh OUTDIR   -> OUTDIR/fuzz-qcow2-open, OUTDIR/fuzz-nbd
set -eu
out=${1:?usage: build-fuzzer.sh OUTDIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-clang-14}
mkdir -p "$out"
srcs=$(find "$root/src" -name '*.c' -not -path '*/cli/*' | sort)
# the same libraries meson links libvmclone with (meson.build)
libs="$(pkg-config --libs zlib libzstd libcrypto json-c sqlite3) -lpthread"
# shellcheck disable=SC2086
"$CC" -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
    -I"$root/include" -I"$root/src" -I"$root/src/chain/engine" \
    $srcs "$root/tests/fuzz/fuzz-qcow2-open.c" \
    -o "$out/fuzz-qcow2-open" $libs
echo "$out/fuzz-qcow2-open"
# the NBD handshake + request parser (tests/fuzz/fuzz-nbd.c)
# shellcheck disable=SC2086
"$CC" -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
    -I"$root/include" -I"$root/src" -I"$root/src/chain/engine" \
    $srcs "$root/tests/fuzz/fuzz-nbd.c" \
    -o "$out/fuzz-nbd" $libs
echo "$out/fuzz-nbd"
