#!/bin/bash
# backing-confine: `template import --flatten` of an untrusted image follows
# backing files only in the image's directory or under --allow-backing DIR
# (issue 9 finding 7). Backing names '/etc/passwd' (absolute),
# '../../etc/passwd' (escape) and a symlink in the directory pointing out
# are refused with a clear error and nothing imported; a chain inside the
# directory imports; --allow-backing DIR admits a chain in DIR.
. "$(dirname "$0")/cat-lib.sh"

mkdir -p up/deep/er other
mk_template other/base.qcow2
cp other/base.qcow2 up/deep/er/base.qcow2
ln -s "$T/other/base.qcow2" up/deep/er/link.qcow2

# an overlay whose header names BACKING (raw, so that host files qualify)
overlay() {     # overlay FILE BACKING
    qemu-img create -q -f qcow2 -u -b "$2" -F raw "$1" 16M || fail "qemu-img create $1"
}
refused() {     # refused NAME IMAGE WHAT...: non-zero, a clear message, no row
    local name=$1 img=$2 rc=0
    shift 2
    vmc template import "$name" "$img" --flatten "$@" > out 2> err || rc=$?
    [ "$rc" != 0 ] || fail "import of $img (backing $(qemu-img info -U "$img" | sed -n 's/^backing file: //p')) succeeded"
    grep -qE "absolute name: refused|outside .*: refused" err ||
        fail "import of $img: no clear refusal: $(cat err)"
    [ "$(sql "SELECT count(*) FROM templates WHERE name = '$name'")" = 0 ] ||
        fail "a template row was left for $name"
}

overlay up/deep/er/abs.qcow2 /etc/passwd
refused abs up/deep/er/abs.qcow2
overlay up/deep/er/esc.qcow2 ../../../../../../../../etc/passwd
refused esc up/deep/er/esc.qcow2
overlay up/deep/er/dots.qcow2 ../../../other/base.qcow2
refused dots up/deep/er/dots.qcow2
qemu-img create -q -f qcow2 -u -b link.qcow2 -F qcow2 up/deep/er/sym.qcow2 16M
refused sym up/deep/er/sym.qcow2
# a chain one level down that escapes in its second link
qemu-img create -q -f qcow2 -u -b esc.qcow2 -F qcow2 up/deep/er/two.qcow2 16M
refused two up/deep/er/two.qcow2
# --allow-backing DIR does not admit files outside DIR either
refused abs2 up/deep/er/abs.qcow2 --allow-backing other

# inside the directory: fine
qemu-img create -q -f qcow2 -u -b base.qcow2 -F qcow2 up/deep/er/ok.qcow2 16M
ok vmc template import ok up/deep/er/ok.qcow2 --flatten -q
# outside, but under --allow-backing DIR: fine, with an absolute name too
qemu-img create -q -f qcow2 -u -b "$T/other/base.qcow2" -F qcow2 up/deep/er/ok2.qcow2 16M
ok vmc template import ok2 up/deep/er/ok2.qcow2 --flatten --allow-backing other -q
ok vmc template import ok3 up/deep/er/sym.qcow2 --flatten --allow-backing other -q
fsck_clean
exit 0
