#!/bin/bash
# scripts/check-layers.sh - keep the folders of src/ a one-way stack.
#
# Reads every quoted #include of src/ and fails (exit 1), printing each
# offending line, when a file
#   - includes a header of a higher layer (an upward include), or
#   - from above the chain, includes a header of another module that is not
#     public to it (a reach-around), or
#   - takes part in an include cycle (a.h -> b.h -> a.h).
#
# The layers, lowest first:
#
#   util  <-  io  <-  format  <-  chain  <-  ops  <-  catalog  <-  cli | nbd
#
# src/virt (the hardware model and libvirt domains) is part of the catalog
# layer: it reads the catalog's rows, the catalog's delete and fsck call
# it, and cli uses it through include/vmclone-virt.h.
#
# The engine folders (util, io, format, chain) may include any header of a
# lower engine layer. The folders above it (ops, catalog, nbd, cli) may
# include only their own headers, include/*.h, util/*.h and the sanctioned
# engine header(s) under src/chain/engine/ (the list `sanctioned` below).
# cli and nbd sit side by side and do not include each other.
#
# Known violations are listed in scripts/check-layers.allow, one
# "FILE: HEADER" a line. The list may only shrink: an entry that no longer
# matches an include is an error too, so whoever fixes a violation also
# deletes its line.
#
# Usage: scripts/check-layers.sh [--root DIR] [--allow FILE]
#        scripts/check-layers.sh --self-test
# --root is the source tree (default: the one holding this script).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
allow=
self_test=0

while [ $# -gt 0 ]; do
    case $1 in
    --root) root=$2; shift 2 ;;
    --allow) allow=$2; shift 2 ;;
    --self-test) self_test=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-layers: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$allow" ] || allow=$root/scripts/check-layers.allow

# Rank of each folder of src/; equal ranks are side by side.
declare -A rank=([util]=0 [io]=1 [format]=2 [chain]=3
                 [ops]=4 [catalog]=5 [virt]=5 [cli]=6 [nbd]=6)
# Folders that count as one module for the layer rules.
declare -A module=([virt]=catalog)
engine_top=3
# Headers of src/ that the folders above the engine may include (globs,
# relative to src/): the leaf helpers and the sanctioned engine header.
sanctioned=('util/*' 'chain/engine/*')

# The helpers below set globals instead of printing, so that checking a
# line forks no process (the check runs on busy CI machines).

# Sets $mod to the module of the src-relative path $1 and $lab to the
# name of its folder as messages print it.
module_label() {
    local top=${1%%/*}
    mod=${module[$top]:-$top}
    if [ "$mod" != "$top" ]; then
        lab="$top (part of $mod)"
    else
        lab=$top
    fi
}

# Sets $norm to path $1 with its "." and ".." components resolved.
normalise() {
    local part
    local -a out=()
    local IFS=/
    for part in $1; do
        case $part in
        ''|.) ;;
        ..) [ ${#out[@]} -gt 0 ] && unset 'out[${#out[@]}-1]' ;;
        *) out+=("$part") ;;
        esac
    done
    norm="${out[*]}"
}

# Sets $target to the quoted include $2 of file $1 (both relative to
# $root) resolved the way the build does: the including file's folder,
# then src/, then include/, then src/chain/engine/. "src/..." or "include/...", or empty for a
# header found nowhere (a generated or system header; the compiler checks
# those).
resolve() {
    local from_dir=${1%/*} name=$2
    target=
    if [ -f "$root/$from_dir/$name" ]; then
        normalise "$from_dir/$name"
        target=$norm
    elif [ -f "$root/src/$name" ]; then
        target=src/$name
    elif [ -f "$root/include/$name" ]; then
        target=include/$name
    elif [ -f "$root/src/chain/engine/$name" ]; then
        target=src/chain/engine/$name
    fi
}

# Sets $why to the reason src file $1 may not include header $2 (both
# relative to $root), or to nothing when it may.
verdict() {
    local from=${1#src/} to=$2 fm tm flab tlab fr tr glob
    why=
    case $to in include/*) return ;; esac
    to=${to#src/}
    module_label "$from"; fm=$mod; flab=$lab
    module_label "$to"; tm=$mod; tlab=$lab
    [ "$fm" = "$tm" ] && return
    fr=${rank[${from%%/*}]:-}
    tr=${rank[${to%%/*}]:-}
    if [ -z "$fr" ] || [ -z "$tr" ]; then
        why="folder not in the layer table of scripts/check-layers.sh"
        return
    fi
    if [ "$tr" -gt "$fr" ] || { [ "$tr" -eq "$fr" ] && [ "$fr" -gt "$engine_top" ]; }; then
        why="upward include: $flab is below $tlab"
        return
    fi
    [ "$fr" -le "$engine_top" ] && return
    for glob in "${sanctioned[@]}"; do
        # shellcheck disable=SC2053  # $glob is a pattern on purpose
        [[ $to == $glob ]] && return
    done
    why="reach-around: $flab uses a non-public header of $tlab"
}

# The allow-list: "FILE: HEADER" -> 1 (0 once matched).
declare -A allowed=()
if [ -f "$allow" ]; then
    while read -r -a words; do
        line="${words[*]}"              # blanks squeezed to one space
        line=${line%%#*}
        line=${line% }
        [ -n "$line" ] && allowed[$line]=1
    done < "$allow"
fi

run_check() {
    local failed=0 file lineno text name target why key mod lab norm
    local include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)"'
    declare -A edges=()

    while IFS=: read -r file lineno text; do
        file=${file#"$root"/}
        [[ $text =~ $include_re ]] || continue
        name=${BASH_REMATCH[1]}
        resolve "$file" "$name"
        [ -n "$target" ] || continue
        case $target in src/*) edges[$file]+=" $target" ;; esac
        verdict "$file" "$target"
        [ -n "$why" ] || continue
        key="$file: $name"
        if [ -n "${allowed[$key]:-}" ]; then
            allowed[$key]=0
            continue
        fi
        printf '%s:%s:%s    [%s]\n' "$file" "$lineno" "$text" "$why"
        failed=1
    done < <(cd "$root" && grep -rn --include='*.c' --include='*.h' \
                 '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' src | sort -t: -k1,1 -k2,2n)

    for key in "${!allowed[@]}"; do
        if [ "${allowed[$key]}" = 1 ]; then
            echo "$allow: '$key' no longer occurs: delete it from the allow-list"
            failed=1
        fi
    done

    # Include cycles: depth-first search, colour 1 = on the stack, 2 = done.
    declare -A colour=()
    local -a stack=()
    visit() {
        local n=$1 m i cyc
        colour[$n]=1
        stack+=("$n")
        for m in ${edges[$n]:-}; do
            if [ "${colour[$m]:-0}" = 1 ]; then
                cyc=
                for ((i = ${#stack[@]} - 1; i >= 0; i--)); do
                    cyc="${stack[$i]} -> $cyc"
                    [ "${stack[$i]}" = "$m" ] && break
                done
                echo "include cycle: $cyc$m"
                failed=1
            elif [ "${colour[$m]:-0}" = 0 ]; then
                visit "$m"
            fi
        done
        unset 'stack[${#stack[@]}-1]'
        colour[$n]=2
    }
    for file in $(printf '%s\n' "${!edges[@]}" | sort); do
        [ "${colour[$file]:-0}" = 0 ] && visit "$file"
    done
    return $failed
}

# --self-test: the real tree (with the real allow-list) passes; a copy with
# one bad include added fails for each kind of violation and names it.
self_test() {
    local tmp rc=0 out
    tmp=$(mktemp -d) || return 1
    trap 'rm -rf "$tmp"' RETURN

    expect() {  # expect STATUS PATTERN DESCRIPTION -- runs on $tmp/tree
        local want=$1 pattern=$2 what=$3 got
        out=$("$0" --root "$tmp/tree" --allow "$tmp/allow" 2>&1)
        got=$?
        if [ "$got" != "$want" ] || ! grep -q -- "$pattern" <<<"$out"; then
            echo "FAIL: $what: exit $got (want $want), output:"
            sed 's/^/    /' <<<"$out"
            rc=1
        else
            echo "ok: $what"
        fi
    }
    fresh() {  # a clean copy of src/ and include/ with the real allow-list
        rm -rf "$tmp/tree"
        mkdir -p "$tmp/tree/scripts"
        cp -r "$root/src" "$root/include" "$tmp/tree/"
        cp "$allow" "$tmp/allow" 2>/dev/null || : > "$tmp/allow"
        mkdir -p "$tmp/tree/src/chain/engine"
        for d in util format chain/engine catalog nbd ops; do
            echo '/* self-test header */' > "$tmp/tree/src/$d/zz-selftest.h"
        done
    }

    fresh
    printf '#include "vmclone.h"\n#include "util/zz-selftest.h"\n#include "chain/engine/zz-selftest.h"\n#include "nbd/zz-selftest.h"\n' \
        > "$tmp/tree/src/nbd/zz-ok.c"
    expect 0 '' "the tree as it is, plus public, util and engine headers from nbd"

    fresh
    echo '#include "catalog/zz-selftest.h"' > "$tmp/tree/src/format/zz-bad.c"
    expect 1 'src/format/zz-bad.c:1:.*upward include: format is below catalog' "an upward include"

    fresh
    echo '#include "nbd/zz-selftest.h"' > "$tmp/tree/src/util/zz-bad.c"
    expect 1 'src/util/zz-bad.c:1:.*upward include' "an upward include from util"

    fresh
    echo '#include "format/zz-selftest.h"' > "$tmp/tree/src/nbd/zz-bad.c"
    expect 1 'src/nbd/zz-bad.c:1:.*reach-around: nbd uses a non-public header of format' \
        "a reach-around into format"

    fresh
    echo '#include "ops/zz-selftest.h"' > "$tmp/tree/src/catalog/zz-bad.c"
    expect 1 'src/catalog/zz-bad.c:1:.*reach-around: catalog uses a non-public header of ops' \
        "a reach-around into ops"

    fresh
    echo '#include "nbd/zz-selftest.h"' > "$tmp/tree/src/cli/zz-bad.c"
    expect 1 'src/cli/zz-bad.c:1:.*upward include: cli is below nbd' "cli and nbd side by side"

    fresh
    printf '#include "ops/zz-b.h"\n' > "$tmp/tree/src/ops/zz-a.h"
    printf '#include "zz-a.h"\n' > "$tmp/tree/src/ops/zz-b.h"
    echo '#include "ops/zz-a.h"' > "$tmp/tree/src/ops/zz-bad.c"
    expect 1 'include cycle: src/ops/zz-a.h -> src/ops/zz-b.h -> src/ops/zz-a.h' "an include cycle"

    fresh
    echo 'src/util/zz-none.c: nbd/zz-selftest.h' >> "$tmp/allow"
    expect 1 "'src/util/zz-none.c: nbd/zz-selftest.h' no longer occurs" "a stale allow-list entry"

    fresh
    echo '#include "nbd/zz-selftest.h"' > "$tmp/tree/src/util/zz-bad.c"
    echo 'src/util/zz-bad.c: nbd/zz-selftest.h' >> "$tmp/allow"
    expect 0 '' "an allow-listed violation"

    return $rc
}

if [ $self_test = 1 ]; then
    self_test
    exit $?
fi
run_check
