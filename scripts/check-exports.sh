#!/bin/bash
# scripts/check-exports.sh - libvmclone exports exactly its public API.
#
# Lists the dynamic symbols a shared library defines (nm -D --defined-only)
# and the vmc_ functions declared in include/*.h, and fails (exit 1),
# printing each difference, when
#   - the library exports a symbol that is not declared in include/ (an
#     internal function leaking out: give it no VMC_API, or make it static),
#   - a function declared in include/ is not exported (its declaration lacks
#     VMC_API, or the file defining it does not include its header).
# The library is built with -fvisibility=hidden (src/meson.build) and each
# public declaration carries VMC_API (include/vmclone.h).
#
# Usage: scripts/check-exports.sh LIBRARY.so [--include DIR]
#        scripts/check-exports.sh --self-test
# --include is the public header folder (default: include/ of this tree).
set -u

here=$(cd "$(dirname "$0")" && pwd)
incdir=$(dirname "$here")/include
lib=
self_test=0

while [ $# -gt 0 ]; do
    case $1 in
    --include) incdir=$2; shift 2 ;;
    --self-test) self_test=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "check-exports: unknown argument '$1'" >&2; exit 2 ;;
    *) lib=$1; shift ;;
    esac
done

# Prints the vmc_ function names declared in the headers given, one a
# line: comments and preprocessor lines are dropped, then every
# "vmc_name(" is a declaration except "(*vmc_name)(", a function pointer.
declared() {
    awk '
    { text = text $0 "\n" }
    END {
        out = ""; n = length(text); i = 1
        while (i <= n) {
            c = substr(text, i, 2)
            if (c == "/*") {
                j = index(substr(text, i + 2), "*/")
                i += (j ? j + 3 : n); out = out " "; continue
            }
            if (c == "//") {
                j = index(substr(text, i), "\n")
                i += (j ? j - 1 : n); continue
            }
            out = out substr(text, i, 1); i++
        }
        m = split(out, lines, "\n"); body = ""
        for (k = 1; k <= m; k++)
            if (lines[k] !~ /^[ \t]*#/)
                body = body " " lines[k]
        while (match(body, /[^A-Za-z0-9_]vmc_[A-Za-z0-9_]+[ \t]*\(/)) {
            name = substr(body, RSTART + 1, RLENGTH - 1)
            sub(/[ \t]*\($/, "", name)
            if (substr(body, 1, RSTART) !~ /\([ \t]*\*[ \t]*$/)
                print name
            body = substr(body, RSTART + RLENGTH)
        }
    }' "$@" | sort -u
}

# Compares the exported names in file $1 with the declared names in file
# $2; prints each difference and returns 1 if there is one.
compare() {
    local extra missing
    extra=$(comm -23 "$1" "$2")
    missing=$(comm -13 "$1" "$2")
    [ -z "$extra" ] && [ -z "$missing" ] && return 0
    local s
    for s in $extra; do
        echo "check-exports: exported but not declared in include/: $s"
    done
    for s in $missing; do
        echo "check-exports: declared in include/ but not exported: $s"
    done
    return 1
}

# Checks library $1 against the headers of folder $2.
check() {
    local tmp rc
    tmp=$(mktemp -d) || return 2
    if ! nm -D --defined-only "$1" > "$tmp/nm"; then
        echo "check-exports: cannot list the symbols of '$1'" >&2
        rm -rf "$tmp"
        return 2
    fi
    awk 'NF >= 3 { print $3 }' "$tmp/nm" | sed 's/@.*//' | sort -u \
        > "$tmp/exported"
    declared "$2"/*.h > "$tmp/declared"
    if [ ! -s "$tmp/declared" ]; then
        echo "check-exports: no vmc_ declaration found in '$2'" >&2
        rm -rf "$tmp"
        return 2
    fi
    compare "$tmp/exported" "$tmp/declared"
    rc=$?
    [ $rc = 0 ] && echo "check-exports: $(wc -l < "$tmp/exported") symbols, all declared in include/"
    rm -rf "$tmp"
    return $rc
}

# --self-test: the parser finds declarations the way the headers write
# them and skips comments, macros and function pointer types; the
# comparison fails on an extra and on a missing symbol.
self_test() {
    local tmp fails=0
    tmp=$(mktemp -d) || exit 2
    cat > "$tmp/a.h" <<'EOF'
/* vmc_in_comment(x) is not a declaration */
#define VMC_MACRO(x) vmc_in_macro(x)
typedef int (*vmc_callback_fn)(void *opaque);
VMC_API int vmc_one(int a,
                    int b);
VMC_API const char *vmc_two(void);
VMC_API struct vmc_thing *
vmc_three(void); // vmc_after_slashes(
EOF
    declared "$tmp/a.h" > "$tmp/declared"
    printf 'vmc_one\nvmc_three\nvmc_two\n' > "$tmp/want"
    if ! cmp -s "$tmp/declared" "$tmp/want"; then
        echo "self-test: declarations parsed wrong:"; cat "$tmp/declared"
        fails=$((fails + 1))
    fi
    if ! compare "$tmp/want" "$tmp/want" > /dev/null; then
        echo "self-test: equal lists fail"; fails=$((fails + 1))
    fi
    printf 'qcow2_open\nvmc_one\nvmc_three\nvmc_two\n' > "$tmp/extra"
    if compare "$tmp/extra" "$tmp/want" > /dev/null; then
        echo "self-test: an extra export passes"; fails=$((fails + 1))
    fi
    printf 'vmc_one\nvmc_two\n' > "$tmp/missing"
    if compare "$tmp/missing" "$tmp/want" > /dev/null; then
        echo "self-test: a missing export passes"; fails=$((fails + 1))
    fi
    rm -rf "$tmp"
    [ $fails = 0 ] && echo "check-exports self-test: ok"
    [ $fails = 0 ]
}

if [ $self_test = 1 ]; then
    self_test
    exit
fi
if [ -z "$lib" ]; then
    echo "usage: check-exports.sh LIBRARY.so [--include DIR] | --self-test" >&2
    exit 2
fi
check "$lib" "$incdir"
