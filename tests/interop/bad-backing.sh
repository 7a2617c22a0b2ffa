#!/bin/bash
# bad-backing: hostile backing references are refused at open with one
# clear line: loops (by name, self, symlink, hardlink), chains deeper
# than the cap, json:/protocol names, a missing or unrecorded backing
# format (never probed), a missing backing file.  A recorded format is
# obeyed even when the file looks like something else.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version

one_line() {
    local n
    n=$(grep -c . "$T/vmc.err" || true)
    [ "$n" = 1 ] || fail "$1: expected one line on stderr, got $n: $(head -c 400 "$T/vmc.err")"
}

# chain_refused IMG REGEX: every chain-opening command refuses, quickly
chain_refused() {
    local img=$1 re=$2 t0 t1
    t0=$(date +%s%N)
    expect_fail vmc img io -f qcow2 "$img" -c 'read 0 512'; one_line "io $img"; err_matches "$re"
    t1=$(date +%s%N)
    [ $(((t1 - t0) / 1000000)) -lt 5000 ] || fail "refusing $img took $(((t1 - t0) / 1000000)) ms"
    expect_fail vmc img convert -f qcow2 -O raw "$img" out.raw; one_line "convert $img"; err_matches "$re"
    expect_fail vmc img info -f qcow2 --backing-chain "$img"; one_line "info --backing-chain $img"
    expect_fail vmc img compare -f qcow2 -F qcow2 "$img" "$img"
    expect_fail vmc img create -f qcow2 -b "$img" -F qcow2 child.qcow2
    rm -f out.raw child.qcow2
}

mk() { qemu-img create -q -f qcow2 -u "$@" || fail "qemu-img create $* failed"; }

note "a -> b -> a"
mk la.qcow2 1M
mk -b la.qcow2 -F qcow2 lb.qcow2 1M
qemu-img rebase -u -f qcow2 -b lb.qcow2 -F qcow2 la.qcow2
chain_refused la.qcow2 'loop'
chain_refused lb.qcow2 'loop'

note "self loop"
mk self.qcow2 1M
qemu-img rebase -u -f qcow2 -b self.qcow2 -F qcow2 self.qcow2
chain_refused self.qcow2 'loop'

note "loop through a symlink"
mk sl.qcow2 1M
ln -s sl.qcow2 sl-link.qcow2
qemu-img rebase -u -f qcow2 -b sl-link.qcow2 -F qcow2 sl.qcow2
chain_refused sl.qcow2 'loop'

note "loop through a hard link"
mk hl.qcow2 1M
ln hl.qcow2 hl-link.qcow2
qemu-img rebase -u -f qcow2 -b hl-link.qcow2 -F qcow2 hl.qcow2
chain_refused hl.qcow2 'loop'

note "loop through another directory and back (../)"
mkdir d1 d2
mk d1/x.qcow2 1M
mk -b ../d1/x.qcow2 -F qcow2 d2/y.qcow2 1M
qemu-img rebase -u -f qcow2 -b ../d2/y.qcow2 -F qcow2 d1/x.qcow2
chain_refused d2/y.qcow2 'loop'

note "chain deeper than the default cap (256)"
mkdir deep
mk deep/l0.qcow2 1M
for i in $(seq 1 300); do
    mk -b l$((i - 1)).qcow2 -F qcow2 deep/l$i.qcow2 1M
done
chain_refused deep/l300.qcow2 'deep|depth|too long|chain'
# a chain within the cap opens fine ...
ok vmc img io -f qcow2 deep/l200.qcow2 -c 'read -P 0 0 4k'
# ... and --max-depth lowers the cap
expect_fail vmc img io --max-depth 16 -f qcow2 deep/l20.qcow2 -c 'read 0 512'
one_line "max-depth"; err_matches 'deep|depth|too long|chain'
ok vmc img io --max-depth 32 -f qcow2 deep/l20.qcow2 -c 'read 0 512'

note "json: and protocol backing names"
truncate -s 1M plain.raw
mk -b 'json:{"file":{"driver":"file","filename":"plain.raw"}}' -F raw json.qcow2 1M
chain_refused json.qcow2 'json|protocol|not a (plain )?(file|path)'
mk -b 'nbd://127.0.0.1:1/x' -F raw nbd.qcow2 1M
chain_refused nbd.qcow2 'nbd|protocol|not a (plain )?(file|path)'
mk -b 'file:plain.raw' -F raw fileproto.qcow2 1M
chain_refused fileproto.qcow2 'protocol|not a (plain )?(file|path)'

note "backing file missing"
mk -b gone.qcow2 -F qcow2 orphan.qcow2 1M
chain_refused orphan.qcow2 'gone.qcow2'
note "backing file is a directory"
mk -b d1 -F raw dirback.qcow2 1M
chain_refused dirback.qcow2 'd1'

note "backing format not recorded: refused, never probed"
qemu-img create -q -f qcow2 nb-base.qcow2 1M
qemu-io -f qcow2 -c 'write -P 0x5b 0 64k' nb-base.qcow2 >/dev/null
mk -b nb-base.qcow2 -F qcow2 nofmt.qcow2 1M
# turn the backing-format header extension into an unknown one
python3 "$TESTS_DIR/helpers/qcow2-patch.py" nofmt.qcow2 ext_retype=e2792aca:1badcafe || fail "patch failed"
qemu-img info -f qcow2 nofmt.qcow2 | grep -q 'backing file format' &&
    fail "oracle: qemu-img still sees a backing format"
chain_refused nofmt.qcow2 'format'
# unless the user names the format
ok vmc img io --backing-fmt qcow2 -f qcow2 nofmt.qcow2 -c 'read -P 0x5b 0 64k'

note "recorded format is obeyed: a qcow2 base recorded as raw is read raw"
mk -b nb-base.qcow2 -F raw asraw.qcow2 1M
qemu-img convert -f qcow2 -O raw asraw.qcow2 ref.raw
ok vmc img convert -f qcow2 -O raw asraw.qcow2 ours.raw
same_bytes ours.raw ref.raw
head -c 4 ours.raw | grep -q 'QFI' || fail "the qcow2 base was probed instead of read as raw"
note "ok"
