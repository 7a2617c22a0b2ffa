#!/bin/bash
# export-lib.sh - shared steps of the export-* tests (sourced after
# lib.sh): a qcow2 source filled by qemu-io (patterns at scattered
# offsets, an explicitly zeroed range, unallocated gaps, data in the last
# partial block), converted by `vm-clone img convert -O FMT`; the output
# must read back identical through qemu-img (compare, and check where
# qemu-img checks the format) and through our own read driver.

# make_source FILE SIZE: the qcow2 source (SIZE not a block multiple).
make_source() {
    local f=$1 size=$2 last
    last=$(( (size - 4096) / 512 * 512 ))
    qemu-img create -q -f qcow2 "$f" "$size" || fail "qemu-img create $f failed"
    qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 3M 100k' \
        -c 'write -z 3200k 64k' -c 'write -P 0x33 5M 4k' \
        -c 'write -P 0x44 9M 512' -c 'write -P 0x55 10300k 4k' \
        -c "write -P 0x66 $last 4096" "$f" >/dev/null \
        || fail "qemu-io on $f failed"
}

# export_ok SRC SRCFMT OUT FMT CHECK [-o OPTS...]: convert SRC to OUT and
# compare both ways; CHECK=1 also runs qemu-img check on OUT.
export_ok() {
    local src=$1 sfmt=$2 out=$3 fmt=$4 check=$5 rc=0 msg
    shift 5
    note "convert $src -> $out ($fmt $*)"
    rm -f "$out"
    vmc img convert -f "$sfmt" -O "$fmt" "$@" "$src" "$out" \
        || fail "vm-clone img convert -O $fmt $* failed"
    msg=$(qemu-img compare -f "$sfmt" -F "$fmt" "$src" "$out" 2>&1) || rc=$?
    [ "$rc" = 0 ] || fail "qemu-img compare $src $out exited $rc: $msg"
    if [ "$check" = 1 ]; then
        msg=$(qemu-img check -f "$fmt" "$out" 2>&1) || fail "qemu-img check $out: $msg"
    fi
    vmc img compare -f "$sfmt" -F "$fmt" "$src" "$out" >/dev/null \
        || fail "our reader does not read $out back identical to $src"
    vmc img info "$out" | grep -q "file format: $fmt" \
        || fail "$out is not probed as $fmt"
}

# size_of IMG FMT: the virtual size qemu-img reads.
size_of() {
    qemu-img info -f "$2" --output=json "$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}

# allocated_mib IMG FMT: MiB of guest data qemu-img maps as present.
data_mib() {
    qemu-img map -f "$2" --output=json "$1" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]) >> 20)'
}

# export_common FMT CHECK SUBFORMAT...: the source, every subformat, an
# odd size, an empty image, and the refusals every writer shares.
export_common() {
    local fmt=$1 check=$2 sf
    shift 2
    make_source src.qcow2 $((10 * 1048576 + 300 * 1024 + 512))
    truncate -s 5000001 odd.raw
    printf 'tail' | dd of=odd.raw bs=1 seek=4999997 conv=notrunc status=none
    printf 'head' | dd of=odd.raw bs=1 seek=0 conv=notrunc status=none
    qemu-img create -q -f qcow2 empty.qcow2 0
    for sf in "$@"; do
        export_ok src.qcow2 qcow2 "out-$sf.$fmt" "$fmt" "$check" -o "subformat=$sf"
        export_ok odd.raw raw "odd-$sf.$fmt" "$fmt" "$check" -o "subformat=$sf"
        # qemu-img cannot open an empty VHDX, VMDK or fixed VHD: refused
        case $fmt.$sf in vpc.fixed|vhdx.*|vmdk.*)
            expect_fail vmc img convert -O "$fmt" -o "subformat=$sf" empty.qcow2 e.out
            err_matches 'empty .* refused'
            continue ;;
        esac
        export_ok empty.qcow2 qcow2 "empty-$sf.$fmt" "$fmt" "$check" -o "subformat=$sf"
        [ "$(size_of "empty-$sf.$fmt" "$fmt")" = 0 ] || fail "empty $sf is not empty"
    done
    # -S 0 writes every byte: the whole guest becomes data
    export_ok src.qcow2 qcow2 "full.$fmt" "$fmt" "$check" -S 0
    expect_fail vmc img convert -O "$fmt" -o subformat=nonesuch src.qcow2 bad.out
    err_matches "invalid subformat 'nonesuch'"
    expect_fail vmc img convert -O "$fmt" -o nonesuch=1 src.qcow2 bad.out
    err_matches "invalid parameter 'nonesuch'"
    expect_fail vmc img convert -O "$fmt" -B src.qcow2 -F qcow2 src.qcow2 bad.out
    err_matches 'backing file not supported'
    qemu-img create -q -f "$fmt" exists.out 1M 2>/dev/null || : > exists.out
    expect_fail vmc img convert -n -O "$fmt" src.qcow2 exists.out
    err_matches 'qcow2 or raw target'
}

# too_big FMT SIZE PATTERN [OPTS...]: a source of SIZE is refused.
too_big() {
    local fmt=$1 size=$2 pattern=$3
    shift 3
    qemu-img create -q -f qcow2 big.qcow2 "$size" || fail "qemu-img create $size"
    expect_fail vmc img convert -O "$fmt" "$@" big.qcow2 big.out
    err_matches "$pattern"
    [ ! -s big.out ] || fail "a refused $fmt of $size left data behind"
    rm -f big.qcow2 big.out
}
