#!/bin/bash
# scripts/check-size.sh - keep the files and functions of src/ readable.
#
# Fails (exit 1), printing each offender, when a .c or .h file of src/ is
# over 1,000 lines or a function is over 150 lines (from the line of its
# name to its closing brace), unless the code says why it must be:
#   - a file: a line "size: REASON" in its opening comment,
#   - a function: a line "size: REASON" in the comment just above it.
# For example:
#
#   /*
#    * Parses the whole header in one pass: ...
#    * size: one check per header field, in the order of the spec
#    */
#   static int
#   read_header(...)
#
# Known offenders are listed in scripts/check-size.allow, one "FILE" or
# "FILE: FUNCTION" a line. The list may only shrink: an entry that is no
# longer over its limit is an error too, so whoever splits the code also
# deletes the line.
#
# Usage: scripts/check-size.sh [--root DIR] [--allow FILE]
#        scripts/check-size.sh --self-test
# --root is the source tree (default: the one holding this script).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
allow=
self_test=0
max_file=1000
max_func=150

while [ $# -gt 0 ]; do
    case $1 in
    --root) root=$2; shift 2 ;;
    --allow) allow=$2; shift 2 ;;
    --self-test) self_test=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-size: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$allow" ] || allow=$root/scripts/check-size.allow

# Prints, for C file $1 (named $2 in the output), one line per offender:
# "NAME\tLINES\tLIMIT" for the file, "NAME: FUNC\tLINES\tLIMIT" for a
# function; offenders whose comment carries a "size:" line are skipped.
# Comments, string and character literals are removed before the braces
# are counted; a function is a top-level brace block whose head ends with
# ")" and has no "=".
measure() {
    awk -v name="$2" -v max_file=$max_file -v max_func=$max_func '
    function marker(text) { return text ~ /(^|[ \t*\/])size:[ \t]*[^ \t]/ }
    BEGIN { depth = 0; incom = 0; head = ""; code_seen = 0
            file_ok = 0; func_ok = 0 }
    {
        line = $0; clean = ""; n = length(line); i = 1
        if (incom && marker(line)) com_size = 1
        while (i <= n) {
            c = substr(line, i, 1); c2 = substr(line, i, 2)
            if (incom) {
                if (c2 == "*/") {
                    incom = 0; i += 2
                    if (!code_seen && first_com) file_ok = com_size
                    if (depth == 0) func_ok = com_size
                    first_com = 0
                } else i++
                continue
            }
            if (c2 == "/*") {
                incom = 1; i += 2; com_size = marker(substr(line, i))
                first_com = !code_seen && !had_com; had_com = 1
                continue
            }
            if (c2 == "//") break
            if (c == "\"" || c == "\x27") {
                q = c; i++
                while (i <= n && substr(line, i, 1) != q) {
                    if (substr(line, i, 1) == "\\") i++
                    i++
                }
                i++; clean = clean "x"; continue
            }
            clean = clean c; i++
        }
        if (clean ~ /^[ \t]*#/) next
        if (clean ~ /[^ \t]/) code_seen = 1
        for (i = 1; i <= length(clean); i++) {
            c = substr(clean, i, 1)
            if (depth == 0) {
                if (c == "{") {
                    infunc = 0
                    if (head ~ /\)[ \t\n]*$/ && head !~ /=/ &&
                        match(head, /[A-Za-z_][A-Za-z0-9_]*[ \t\n]*\(/)) {
                        fname = substr(head, RSTART, RLENGTH)
                        sub(/[ \t\n]*\($/, "", fname)
                        infunc = 1; fstart = nstart; fok = func_ok
                    }
                    depth = 1; head = ""; func_ok = 0; continue
                }
                if (c == ";" || c == "}") { head = ""; func_ok = 0; continue }
                if (head == "" && c ~ /[ \t]/) continue
                head = head c
                if (c == "(" && index(head, "(") == length(head)) nstart = NR
            } else if (c == "{") {
                depth++
            } else if (c == "}") {
                depth--
                if (depth == 0 && infunc) {
                    len = NR - fstart + 1
                    if (len > max_func && !fok)
                        printf "%s: %s\t%d\t%d\n", name, fname, len, max_func
                    infunc = 0
                }
            }
        }
        if (depth == 0 && head != "") head = head "\n"
    }
    END {
        if (NR > max_file && !file_ok)
            printf "%s\t%d\t%d\n", name, NR, max_file
    }' "$1"
}

# Checks every .c and .h file under $1/src against allow-list $2; prints
# each offender and each stale allow-list line, returns 1 if any.
check() {
    local src=$1/src list=$2 f rel offenders=() line key fails=0
    local -A allowed=() seen=()
    if [ -f "$list" ]; then
        while IFS= read -r line; do
            line=${line%%#*}
            line=${line%"${line##*[![:space:]]}"}
            [ -n "$line" ] && allowed[$line]=1
        done < "$list"
    fi
    while IFS= read -r f; do
        rel=${f#"$1"/}
        while IFS=$'\t' read -r key len limit; do
            [ -n "$key" ] || continue
            if [ -n "${allowed[$key]:-}" ]; then
                seen[$key]=1
                continue
            fi
            echo "check-size: $key: $len lines, over $limit (split it, or say why in a \"size:\" line of its opening comment)"
            fails=$((fails + 1))
        done < <(measure "$f" "$rel")
    done < <(find "$src" -name '*.[ch]' | LC_ALL=C sort)
    for key in "${!allowed[@]}"; do
        if [ -z "${seen[$key]:-}" ]; then
            echo "check-size: $(basename "$list"): '$key' is no longer over its limit: delete the line"
            fails=$((fails + 1))
        fi
    done
    [ $fails = 0 ]
}

# --self-test: the real tree passes; in a scratch tree, a long file, a
# long function, a long function after a short one and a stale allow-list
# line each fail, and "size:" lines and allow-list lines excuse them.
self_test() {
    local tmp fails=0 out
    tmp=$(mktemp -d) || exit 2
    mkdir -p "$tmp/src/m"

    # Writes a C file $1 with function $2 of $3 body lines, after an
    # opening comment $4 and a function comment $5.
    gen() {
        local i
        {
            printf '/*\n * scratch file\n%s */\n\n' "$4"
            printf 'static int\nshort_one(void)\n{\n    return 0;\n}\n\n'
            printf '/* the function%s */\nint\n%s(int a)\n{\n' "$5" "$2"
            for ((i = 0; i < $3; i++)); do
                printf '    a += %d; /* { not a brace */ a -= "}"[0];\n' $i
            done
            printf '    return a;\n}\n'
        } > "$1"
    }
    expect() { # expect PASS|FAIL WHAT [check args...]
        local want=$1 what=$2 rc
        shift 2
        out=$(check "$@")
        rc=$?
        if { [ "$want" = PASS ] && [ $rc != 0 ]; } ||
           { [ "$want" = FAIL ] && [ $rc = 0 ]; }; then
            echo "self-test: $what: expected $want, got:"; echo "$out"
            fails=$((fails + 1))
        fi
    }

    expect PASS "the real tree" "$root" "$allow"
    gen "$tmp/src/m/a.c" fine 140 '' ''
    expect PASS "short file and functions" "$tmp" /dev/null
    gen "$tmp/src/m/a.c" long_one 150 '' ''
    expect FAIL "a 154-line function" "$tmp" /dev/null
    [[ $out == *"src/m/a.c: long_one"* ]] ||
        { echo "self-test: the message does not name the function: $out"; fails=$((fails + 1)); }
    gen "$tmp/src/m/a.c" long_one 150 '' $'\n * size: a table, one case per line\n'
    expect PASS "a long function with a size: line" "$tmp" /dev/null
    gen "$tmp/src/m/a.c" long_one 150 '' ''
    echo 'src/m/a.c: long_one' > "$tmp/allow"
    expect PASS "an allowed long function" "$tmp" "$tmp/allow"
    gen "$tmp/src/m/a.c" long_one 100 '' ''
    expect FAIL "a stale allow-list line" "$tmp" "$tmp/allow"
    for i in 1 2 3 4 5 6 7 8; do
        gen "$tmp/src/m/f$i.c" "f$i" 120 '' ''
        cat "$tmp/src/m/f$i.c"
    done > "$tmp/src/m/big.c"
    rm -f "$tmp/src/m"/f?.c
    expect FAIL "a 1,100-line file" "$tmp" /dev/null
    sed -i '2s/.*/ * size: generated, one function per case/' "$tmp/src/m/big.c"
    expect PASS "a long file with a size: line" "$tmp" /dev/null
    echo 'src/m/big.c' > "$tmp/allow"
    sed -i '2s/.*/ * scratch file/' "$tmp/src/m/big.c"
    expect PASS "an allowed long file" "$tmp" "$tmp/allow"

    rm -rf "$tmp"
    [ $fails = 0 ] && echo "check-size self-test: ok"
    [ $fails = 0 ]
}

if [ $self_test = 1 ]; then
    self_test
    exit
fi
check "$root" "$allow"
