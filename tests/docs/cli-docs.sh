#!/bin/bash
# cli-docs: the man page (docs/vm-clone.1) and the bash completion
# (contrib/bash-completion/vm-clone) follow the CLI they describe.
#
# - every group of 'vm-clone --help', every verb of 'vm-clone img --help'
#   and every command named in the usage lines of 'vm-clone GROUP --help'
#   (pool add, template import, ...) has an entry in the man page's
#   COMMANDS and is offered by the completion;
# - every long option in 'vm-clone img VERB --help' and 'vm-clone GROUP
#   --help' is offered by the completion after '--'; every subcommand
#   ('vm-clone pool add --help'...) has a help generated from its option
#   table, and the completion offers the long options listed there;
# - every VMCLONE_* variable read in src/ is in ENVIRONMENT, and every
#   section the page needs is there;
# - 'vm-clone im<TAB>' gives img, 'vm-clone img con<TAB>' gives the img
#   verbs starting with con; VM and template names are completed from a
#   real store, quietly, and a missing store is neither created nor
#   complained about;
# - groff renders the page without a warning (-ww); mandoc -Tlint too
#   when it is installed. Without groff the test skips (77) at the end.
#
# VMC_MAN_PAGE and VMC_COMPLETION point the test at other files (to check
# that it fails on a broken page or completion).
. "$(dirname "$0")/../lib.sh"

SRC=$(cd "$TESTS_DIR/.." && pwd)
MAN=${VMC_MAN_PAGE:-$SRC/docs/vm-clone.1}
COMP=${VMC_COMPLETION:-$SRC/contrib/bash-completion/vm-clone}
[ -f "$MAN" ] || fail "no man page at $MAN"
[ -f "$COMP" ] || fail "no completion at $COMP"

# ------------------------------------------------------------ the CLI

# section_words TITLE < help: the first word of each line of the table
# that follows the line TITLE (up to the first blank line).
section_words() {
    awk -v t="$1" '$0 == t { on = 1; next }
                   on && /^$/ { exit }
                   on && /^  [a-z]/ { print $1 }'
}

vmc --help > top.help || fail "vm-clone --help failed"
groups=$(section_words 'groups:' < top.help)
vmc img --help > img.help || fail "vm-clone img --help failed"
verbs=$(section_words 'commands:' < img.help)
[ "$(echo "$groups" | wc -w)" -ge 10 ] || fail "found only '$groups' in vm-clone --help"
[ "$(echo "$verbs" | wc -w)" -ge 10 ] || fail "found only '$verbs' in vm-clone img --help"
echo "$groups" | grep -qx img || fail "no img group in vm-clone --help"
echo "$verbs" | grep -qx convert || fail "no convert in vm-clone img --help"
note "groups:" $groups
note "img verbs:" $verbs

# subcmds GROUP: the commands in the usage lines of 'vm-clone GROUP --help'
# ("vm-clone pool add NAME DIR" -> add).
declare -A subs
for g in $groups; do
    [ "$g" = img ] && continue
    vmc "$g" --help > "help.$g" || fail "vm-clone $g --help failed"
    subs[$g]=$(grep -oE "vm-clone $g [a-z][a-z-]*" "help.$g" | awk '{ print $3 }' | sort -u)
done
for g in pool template snapshot config vm; do
    [ -n "${subs[$g]-}" ] || fail "no commands found in vm-clone $g --help"
done

# long_opts FILE: the long options in the usage lines of a help text (up
# to its first blank line) and in its "common options" lines; the prose
# also names other commands' options.
long_opts() {
    awk '/^$/ { u = 1 } !u || /^common options:/ { c = /^common options:/ }
         !u || c { print }' "$1" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# ----------------------------------------------------------- man page

# The .TP tags of the page as "SECTION<tab>SUBSECTION<tab>tag text", with font
# escapes and macros removed and \- turned into -.
awk '
    /^\.SH / { sh = substr($0, 5); gsub(/"/, "", sh); ss = ""; next }
    /^\.SS / { ss = substr($0, 5); gsub(/"/, "", ss); next }
    /^\.TP/  { tag = 1; next }
    tag {
        t = $0
        sub(/^\.[BI]?[BIR]? /, "", t)
        gsub(/\\f[BIRP]/, "", t); gsub(/\\-/, "-", t); gsub(/"/, "", t)
        print sh "\t" ss "\t" t
        tag = 0
    }' "$MAN" > man.tags
[ -s man.tags ] || fail "no .TP entries in $MAN"
grep -P '^COMMANDS\t' man.tags | grep -vP '\tImage commands' | cut -f3 > man.cmds
grep -P '^COMMANDS\tImage commands' man.tags | cut -f3 | awk '{ print $1 }' > man.verbs
# groups named in subsection titles ("...: vm-clone img VERB" -> img)
grep -oE '^\.SS .*vm-clone [a-z]+' "$MAN" | awk '{ print $NF }' > man.groups
awk '{ print $1 }' man.cmds >> man.groups

for g in $groups; do
    grep -qx -- "$g" man.groups || fail "group '$g' has no entry in COMMANDS of $MAN"
    for s in ${subs[$g]-}; do
        grep -q "^$g $s\\b" man.cmds || fail "'$g $s' has no entry in COMMANDS of $MAN"
    done
done
for v in $verbs; do
    grep -qx -- "$v" man.verbs || fail "img verb '$v' has no entry in the image commands of $MAN"
done
grep -q '^--linked|--full --name' man.cmds || fail "the short form has no entry in $MAN"

for sec in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS ENVIRONMENT FILES \
           'EXIT STATUS' EXAMPLES 'SEE ALSO'; do
    grep -qE "^\\.SH \"?$sec\"?\$" "$MAN" || fail "$MAN has no $sec section"
done
grep -qE '^\.TH VM-CLONE 1 ' "$MAN" || fail "$MAN: .TH is not VM-CLONE 1"
! grep -nP '[\x00-\x08\x0b-\x1f\x7f]' "$MAN" > ctrl.out ||
    fail "control characters in $MAN: $(head -3 ctrl.out | cat -A)"
for o in --home --json --bytes; do
    grep -P "^OPTIONS\t" man.tags | grep -q -- "$o" || fail "option $o is not in OPTIONS of $MAN"
done
for e in $(grep -rhoE 'getenv\("VMCLONE_[A-Z_]+"\)' "$SRC/src" | grep -oE 'VMCLONE_[A-Z_]+' | sort -u); do
    grep -P "^ENVIRONMENT\t" man.tags | grep -q -- "$e" || fail "$e (read in src/) is not in ENVIRONMENT of $MAN"
done
for x in qemu-img qemu-nbd nbdinfo; do
    grep -q "^\\.BR $x (" "$MAN" || fail "SEE ALSO of $MAN lacks $x"
done

# --------------------------------------------------------- completion

bash -n "$COMP" || fail "$COMP is not valid bash"

# comp WORD...: what _vm_clone offers for the command line WORD... (the
# last word is the one being completed), one per line. Runs in a clean
# bash with set -u; anything on stderr is a failure.
comp() {
    local rc=0
    bash --norc --noprofile -c '
        set -u
        . "$1" || exit 3
        shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
        _vm_clone || exit 4
        printf "%s\n" "${COMPREPLY[@]+"${COMPREPLY[@]}"}"
    ' comp "$COMP" "$@" 2> comp.err || rc=$?
    [ "$rc" = 0 ] || fail "completing '$*' exited $rc: $(head -c 300 comp.err)"
    [ -s comp.err ] && fail "completing '$*' printed on stderr: $(head -c 300 comp.err)"
    return 0
}

# offers LIST WORD...: each WORD is one line of LIST.
offers() {
    local list=$1 w
    shift
    for w in "$@"; do
        printf '%s\n' "$list" | grep -qx -- "$w" || return 1
    done
}

out=$(comp vm-clone im)
[ "$out" = img ] || fail "vm-clone im<TAB> gave '$out', expected img"

want=$(printf '%s\n' $verbs | grep '^con' | sort)
got=$(comp vm-clone img con | sort)
[ -n "$want" ] || fail "no img verb starts with con"
[ "$got" = "$want" ] || fail "vm-clone img con<TAB> gave '$(echo $got)', expected '$(echo $want)'"

all=$(comp vm-clone "")
for g in $groups; do
    offers "$all" "$g" || fail "completion does not offer group '$g'"
done
all=$(comp vm-clone img "")
for v in $verbs; do
    offers "$all" "$v" || fail "completion does not offer 'img $v'"
done
for g in "${!subs[@]}"; do
    [ -n "${subs[$g]}" ] || continue
    all=$(comp vm-clone "$g" "")
    for s in ${subs[$g]}; do
        offers "$all" "$s" || fail "completion does not offer '$g $s'"
    done
done
out=$(comp vm-clone --home /x tem)
[ "$out" = template ] || fail "vm-clone --home /x tem<TAB> gave '$out'"

# long options, per img verb and per group (union over its commands)
for v in $verbs; do
    vmc img "$v" --help > "img.$v.help" || fail "vm-clone img $v --help failed"
    got=$(comp vm-clone img "$v" -- | sed 's/=$//')
    for o in $(long_opts "img.$v.help"); do
        offers "$got" "$o" || fail "completion of 'img $v --' lacks $o"
    done
done
for g in $groups; do
    [ "$g" = img ] && continue
    if [ -n "${subs[$g]-}" ]; then
        got=$(for s in ${subs[$g]}; do comp vm-clone "$g" "$s" --; done)
    else
        got=$(comp vm-clone "$g" --)
    fi
    [ "$g" = clone ] && got="$got"$'\n'$(comp vm-clone --linked --name x --)
    got=$(printf '%s\n' "$got" | sed 's/=$//')
    for o in $(long_opts "help.$g"); do
        offers "$got" "$o" || fail "completion of '$g --' lacks $o"
    done
done
# every subcommand of a group: its --help (generated from its own option
# table) has an options part, and the completion offers each long option
# listed there after 'vm-clone GROUP SUB --'
sub_opts() {
    awk '/^options:/ { on = 1; next }
         on && /^$/ { exit }
         on && /^  / { sub(/^ +/, ""); split($0, a, "   "); print a[1] }' "$1" |
        grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}
for g in "${!subs[@]}"; do
    for s in ${subs[$g]}; do
        vmc "$g" "$s" --help > "help.$g.$s" || fail "vm-clone $g $s --help failed"
        grep -q '^options:' "help.$g.$s" || fail "vm-clone $g $s --help has no options part"
        got=$(comp vm-clone "$g" "$s" -- | sed 's/=$//')
        for o in $(sub_opts "help.$g.$s"); do
            offers "$got" "$o" || fail "completion of '$g $s --' lacks $o (in its --help)"
        done
    done
done
offers "$(comp vm-clone img info --output =)" human json ||
    fail "--output= values not completed"

# names from a real store, and silence without one
H=$T/home
ok vmc --home "$H" init -q
ok vmc --home "$H" img create -q -f qcow2 base.qcow2 4M
ok vmc --home "$H" template import tmpl-a base.qcow2 -q
ok vmc --home "$H" clone tmpl-a --name vm-one -q
ok vmc --home "$H" snapshot create vm-one snap-x -q
out=$(comp "$VMCLONE" --home "$H" info "")
[ "$out" = vm-one ] || fail "info <TAB> gave '$out', expected vm-one"
out=$(comp "$VMCLONE" template rm --home "$H" "")
[ "$out" = tmpl-a ] || fail "template rm <TAB> gave '$out', expected tmpl-a"
out=$(VMCLONE_HOME=$H comp "$VMCLONE" clone "")
offers "$out" tmpl-a vm-one || fail "clone <TAB> (VMCLONE_HOME) gave '$(echo $out)'"
out=$(comp "$VMCLONE" --home "$H" snapshot revert vm-one "")
[ "$out" = snap-x ] || fail "snapshot revert vm-one <TAB> gave '$out', expected snap-x"
out=$(comp "$VMCLONE" --home "$H" --linked --template "")
[ "$out" = tmpl-a ] || fail "--linked --template <TAB> gave '$out', expected tmpl-a"
out=$(comp "$VMCLONE" --home "$T/nostore" info "")
[ -z "$out" ] || fail "a missing store completed to '$out'"
[ ! -e "$T/nostore" ] || fail "completion created the store $T/nostore"
out=$(HOME=$T/nohome XDG_DATA_HOME= VMCLONE_HOME= comp "$VMCLONE" rm "")
[ -z "$out" ] && [ ! -e "$T/nohome" ] || fail "completion without a store gave '$out' or made one"
out=$(comp /nonexistent/vm-clone --home "$H" info "")
[ -z "$out" ] || fail "a missing binary completed to '$out'"

# ------------------------------------------------------------ rendering

if command -v mandoc >/dev/null 2>&1; then
    mandoc -Tlint -W warning "$MAN" > mandoc.out 2>&1 ||
        fail "mandoc -Tlint: $(head -5 mandoc.out)"
fi
requires groff --version
groff -man -Tutf8 -ww -z "$MAN" > groff.out 2>&1 || fail "groff failed: $(head -5 groff.out)"
[ -s groff.out ] && fail "groff warns about $MAN: $(head -5 groff.out)"
groff -man -Tutf8 -P-cbou "$MAN" 2>/dev/null > man.txt || fail "groff could not render $MAN"
grep -q '^COMMANDS' man.txt && grep -q 'vm-clone img verb' man.txt ||
    fail "the rendered page lacks its COMMANDS or SYNOPSIS"
exit 0
