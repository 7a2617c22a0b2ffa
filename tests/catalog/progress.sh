#!/bin/bash
# progress: long operations show a progress bar when stdout is a TTY
# (run under script(1)) and print none on a pipe, with --json or -q:
# the template copy on first linked use in a pool, full clone, relink,
# consolidate, flatten, template rm --flatten-dependents.
. "$(dirname "$0")/cat-lib.sh"
requires script --version

BAR='100\.00/100%'
# on_tty CMD...: run vm-clone CMD on a pseudo-terminal, output in tty.out
on_tty() {
    local q="" a
    for a in "$@"; do q+=" $(printf '%q' "$a")"; done
    script -qefc "$(printf '%q' "$VMCLONE")$q" /dev/null > tty.out 2>&1 < /dev/null ||
        fail "vm-clone $* on a TTY failed: $(cat tty.out)"
    grep -qE 'Sanitizer|runtime error' tty.out && fail "sanitizer report: vm-clone $*"
    return 0
}
bar() { grep -q "$BAR" tty.out || fail "no progress bar on a TTY for: $1: $(cat -v tty.out)"; }
nobar() { grep -q '/100%' "$2" && fail "progress bar without a TTY for: $1: $(cat -v "$2")"; return 0; }

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
mkdir p2 p3
ok vmc pool add p2 "$T/p2" -q
ok vmc pool add p3 "$T/p3" -q

# first linked use in a pool copies the template: bar on a TTY ...
on_tty clone T --name a1
bar "template copy"
grep -q "Copied template 'T' to pool 'primary'" tty.out || fail "no copy line: $(cat -v tty.out)"
# ... none on a pipe, with --json, with -q
vmc clone T --name a2 --pool p2 > pipe.out || fail "clone p2"
nobar "template copy (pipe)" pipe.out
on_tty clone T --name a3 --pool p3 --json
nobar "template copy (--json)" tty.out
[ "$(jget tty.out 'd["template_copy"]["made"]')" = True ] || fail "--json on a TTY: $(cat -v tty.out)"

# full clone, relink, consolidate, flatten
on_tty clone T --name f1 --full
bar "full clone"
on_tty relink f1 --template T
bar "relink"
vmc relink f1 --template T > pipe.out || fail "relink (pipe)"
nobar "relink (pipe)" pipe.out
ok vmc snapshot create a1 s1 -q
ok vmc snapshot create a1 s2 -q
ok vmc snapshot create a1 s3 -q
on_tty consolidate a1
bar "consolidate"
on_tty flatten a2 -q
nobar "flatten -q" tty.out

# template rm --flatten-dependents
ok vmc template import U t.qcow2 -q
ok vmc clone U --name u1 -q
ok vmc clone U --name u2 -q
on_tty template rm U --flatten-dependents
bar "template rm --flatten-dependents"
grep -q "Removed template 'U'" tty.out || fail "no result line: $(cat -v tty.out)"
check_all_disks
fsck_clean
