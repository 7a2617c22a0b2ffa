#!/bin/bash
# usage: every command and subcommand of vm-clone (found in the --help
# that the command tables generate) rejects an option it
# does not take, whether unknown or another subcommand's, with exit 2 and
# the option's name on stderr; missing and extra operands exit 2 too; the
# review's four probes (template list --cpus, template import --from-vm,
# template info --cpus, pool list --kind) are refused; the same commands
# without the stray option still work.
. "$(dirname "$0")/../lib.sh"

export VMCLONE_HOME=$T/home
vmc init -q || fail "vm-clone init"

# usage_err OPTION CMD...: CMD exits 2 and names OPTION on stderr.
usage_err() {
    local opt=$1
    shift
    expect_rc 2 vmc "$@"
    grep -qF -- "'$opt" "$T/vmc.err" ||
        fail "vm-clone $* did not name $opt: $(head -c 300 "$T/vmc.err")"
}

# both "WORDS" [OPERAND...]: an unknown option and an option of another
# command or subcommand, each between the command's words and operands.
both() {
    local words=$1
    shift
    # shellcheck disable=SC2086
    usage_err --no-such-option $words --no-such-option "$@"
    case $words in
    "template create") usage_err --kind $words --kind primary "$@" ;;
    "img info") usage_err --start-offset $words --start-offset 0 "$@" ;;
    img*) usage_err --backing-chain $words --backing-chain "$@" ;;
    *) usage_err --from-vm $words --from-vm foo "$@" ;;
    esac
}

ok vmc img create -q -f qcow2 t.qcow2 4M
ok vmc template import tmpl t.qcow2 -q
ok vmc clone tmpl --name vm1 -q
ok vmc snapshot create vm1 s1 -q

# section_words TITLE < help: the first word of each line of the table
# after the line TITLE, up to the first blank line.
section_words() {
    awk -v t="$1" '$0 == t { on = 1; next }
                   on && /^$/ { exit }
                   on && /^  [a-z]/ { print $1 }'
}

# Every command and subcommand, from the help the tables generate: the
# groups of 'vm-clone --help', the verbs of 'vm-clone img --help', and the
# subcommands in the usage lines of 'vm-clone GROUP --help'; so a new one
# is covered without a change here.
vmc --help > "$T/top.help" || fail "vm-clone --help failed"
vmc img --help > "$T/img.help" || fail "vm-clone img --help failed"
groups=$(section_words 'groups:' < "$T/top.help")
verbs=$(section_words 'commands:' < "$T/img.help")
commands=()
for g in $groups; do
    if [ "$g" = img ]; then
        continue
    fi
    vmc "$g" --help > "$T/help.$g" || fail "vm-clone $g --help failed"
    subs=$(awk '/^$/ { exit } { print }' "$T/help.$g" |
           grep -oE "vm-clone $g [a-z][a-z-]*" | awk '{ print $3 }' | sort -u)
    if [ -z "$subs" ]; then
        commands+=("$g")
    fi
    for s in $subs; do
        commands+=("$g $s")
    done
done
[ "$(echo "$verbs" | wc -w)" -ge 19 ] || fail "only '$verbs' in img --help"
[ "${#commands[@]}" -ge 33 ] || fail "only ${#commands[@]} commands found: ${commands[*]}"
note "img verbs:" $verbs
note "commands:" "${commands[@]}"

for v in $verbs; do
    both "img $v" t.qcow2 1M
done
usage_err -Z img info -Z t.qcow2

# the management commands and their subcommands
for cmd in "${commands[@]}"; do
    both "$cmd" vm1
done
usage_err --no-such-option --linked --name x --no-such-option

# the review's probes
usage_err --cpus template list --cpus 4 --from-vm foo
usage_err --from-vm template import t2 t.qcow2 --from-vm foo
usage_err --cpus template info tmpl --cpus 4
usage_err --kind pool list --kind primary
# an option before the subcommand word is checked against it as well
usage_err --kind pool --kind primary list
[ -z "$(vmc template list -q --json | grep t2)" ] || fail "a refused import imported t2"

# missing and extra operands, unknown subcommands
expect_rc 2 vmc template info
expect_rc 2 vmc template info a b
expect_rc 2 vmc pool add onlyname
expect_rc 2 vmc snapshot list
expect_rc 2 vmc template frobnicate
expect_rc 2 vmc template
expect_rc 2 vmc img info
expect_rc 2 vmc img info a b
expect_rc 2 vmc list extra

# valid invocations still work
ok vmc template list --json > /dev/null
ok vmc template info tmpl > /dev/null
ok vmc --home "$VMCLONE_HOME" pool list > /dev/null
ok vmc pool --json list > /dev/null
ok vmc snapshot list vm1 > /dev/null
ok vmc config get > /dev/null
ok vmc vm xml vm1 > /dev/null
ok vmc template import t3 t.qcow2 --cpus 2 --memory 256 -q
ok vmc template rm t3 --flatten-dependents -q
ok vmc template --help > /dev/null
ok vmc template list --help > /dev/null
ok vmc img info --output=json t.qcow2 > /dev/null
exit 0
