#!/bin/bash
# readme-quickstart: the README's catalog quick start ("## The catalog in
# five commands") runs verbatim (issue 13, point 10). The fenced shell
# block(s) of that section are cut out of README.md and run with bash -e
# in an empty home, with vm-clone on PATH, a small disk.qcow2 and the CI
# variables set; a README edit that breaks them fails here.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

README=$TESTS_DIR/../README.md
[ -f "$README" ] || fail "no README at $README"

# The fenced blocks between the section's heading and the next one.
python3 - "$README" > quickstart.sh <<'PY' || fail "README: no quick start block"
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"^## The catalog in five commands\n(.*?)(?=^## )", text, re.S | re.M)
blocks = re.findall(r"^```(?:sh|bash|shell)?\n(.*?)^```", m.group(1) if m else "", re.S | re.M)
if not blocks:
    sys.exit(1)
print("".join(blocks), end="")
PY
grep -q '^vm-clone init' quickstart.sh || fail "quick start without 'vm-clone init': $(cat quickstart.sh)"

mkdir bin
ln -s "$VMCLONE" bin/vm-clone
qemu-img create -q -f qcow2 disk.qcow2 16M || fail "qemu-img create"
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' disk.qcow2 >/dev/null || fail "qemu-io"

export HOME=$T/user XDG_DATA_HOME= VMCLONE_HOME=
unset XDG_DATA_HOME VMCLONE_HOME
export BUILD_ID=42 JOB_NAME=readme
PATH=$T/bin:$PATH bash -e quickstart.sh > run.out 2> run.err ||
    fail "the README quick start failed: $(cat run.err)"
grep -q 'unit-test-42' run.out || fail "'vm-clone list' did not show unit-test-42: $(cat run.out)"

# It made the store the README names, and cleaned up after itself.
store=$HOME/.local/share/vmclone
[ -f "$store/catalog.db" ] || fail "no store at $store"
vmc --home "$store" template list --json > t.json || fail "template list"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [t["name"] for t in d] == ["golden"], d' t.json ||
    fail "golden not imported: $(cat t.json)"
vmc --home "$store" list --json > l.json || fail "list"
[ "$(cat l.json)" = "[]" ] || fail "the quick start left VMs behind: $(cat l.json)"
