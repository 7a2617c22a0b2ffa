#!/bin/bash
# fuzz-vpc-make-corpus.sh - regenerate the seed corpora of the VHD, VDI and
# VHDX openers (fuzz-vpc-open, fuzz-vdi-open, fuzz-vhdx-open) from
# qemu-img/qemu-io: small images of each subformat, with and without data.
# The small images are committed under tests/fuzz/corpus; the ones of a
# MiB or more (data.vhd, the three VHDX files: the formats align their
# tables on MiB boundaries) are not, and .ci/run makes them all afresh
# into build-fuzz/made-seeds for its smoke run:
#   tests/fuzz/fuzz-vpc-make-corpus.sh OUT_DIR
set -eu
out=${1:?usage: fuzz-vpc-make-corpus.sh CORPUS_DIR}
mkdir -p "$out/vpc-open" "$out/vdi-open" "$out/vhdx-open"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

mk() { # fmt dir name opts size [qemu-io commands...]
    local fmt=$1 dir=$2 name=$3 opts=$4 size=$5; shift 5
    local c=()
    qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$name" "$size"
    for x in "$@"; do c+=(-c "$x"); done
    [ ${#c[@]} = 0 ] || qemu-io -f "$fmt" "${c[@]}" "$name" >/dev/null
    cp "$name" "$out/$dir/$name"
}

mk vpc vpc-open empty.vhd "" 1M
mk vpc vpc-open empty-size.vhd force_size=on 3M
mk vpc vpc-open data.vhd "" 1M 'write -P 0x11 0 1536' 'write -P 0x22 700k 512'
mk vpc vpc-open fixed.vhd subformat=fixed,force_size=on 32k 'write -P 0x33 512 1024'
mk vpc vpc-open fixed-chs.vhd subformat=fixed 40k

mk vdi vdi-open empty.vdi "" 3M
mk vdi vdi-open data.vdi "" 1M 'write -P 0x44 0 1536' 'write -P 0x55 500k 512'
mk vdi vdi-open static.vdi static=on 1M 'write -P 0x66 4096 512'

mk vhdx vhdx-open empty.vhdx block_size=1M 3M
mk vhdx vhdx-open data.vhdx block_size=1M 2M 'write -P 0x77 0 1536' 'write -P 0x88 1M 512'
mk vhdx vhdx-open fixed.vhdx subformat=fixed,block_size=1M 1M 'write -P 0x99 512 512'
