#!/bin/bash
# progress-plain: progress for long work in logs too (issue 13, point 9).
# --progress=plain prints lines on stderr (percentage, bytes, rate, ETA or
# the time taken) for a template import and a full clone, nothing on
# stdout; --progress=none and auto on a pipe (a short operation) print no
# progress; a bad mode is a usage error (2). `template copy NAME --pool P`
# pre-stages the template's copy in pool P once (idempotent: the second
# call copies nothing), and the first linked clone there then copies
# nothing either (the copy's file stays the same).
. "$(dirname "$0")/../catalog/cat-lib.sh"

mk_template t.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x33 16M 24M' t.qcow2 > /dev/null || fail "qemu-io"

vmc template import T t.qcow2 --progress=plain > imp.out 2> imp.err || fail "import: $(cat imp.err)"
grep -Eq '^vm-clone: template: [0-9]+%, [0-9.]+ [KMG]?i?B, [0-9.]+ [KMG]?i?B/s, ETA ' imp.err ||
    fail "no plain progress line with bytes, rate and ETA: $(cat imp.err)"
grep -Eq '^vm-clone: template: 100%, 64 MiB in [0-9]+s' imp.err || fail "no final line: $(cat imp.err)"
! grep -q '%' imp.out || fail "progress on stdout: $(cat imp.out)"

vmc clone T --full --name f1 --progress plain --json > c.json 2> c.err || fail "clone: $(cat c.err)"
grep -Eq '^vm-clone: clone: 100%, 64 MiB in ' c.err || fail "clone --progress plain: $(cat c.err)"
jget c.json 'd' > /dev/null || fail "stdout is not one JSON document: $(cat c.json)"

# a full clone by copy_file_range reports while it copies (a line per
# 32 MiB piece at most), not only its end: 80 MiB of data is three pieces
mk_template big.qcow2 128M
qemu-io -f qcow2 -c 'write -P 0x44 0 80M' big.qcow2 > /dev/null || fail "qemu-io big"
ok vmc template import B big.qcow2 -q
vmc clone B --full --name fb --progress=plain --json > fb.json 2> fb.err || fail "clone fb: $(cat fb.err)"
[ "$(jget fb.json 'd["vms"][0]["mechanism"]' 2>/dev/null || jget fb.json 'd["mechanism"]' 2>/dev/null)" != reflink ] ||
    echo "# note: the filesystem reflinked the copy"
grep -Eq '^vm-clone: clone: [0-9]+%, [0-9.]+ [KMG]?i?B, [0-9.]+ [KMG]?i?B/s, ETA ' fb.err ||
    fail "a full clone printed no progress line while copying: $(cat fb.err)"

vmc clone T --full --name f2 --progress=none > n.out 2> n.err || fail "clone none"
[ ! -s n.err ] || fail "--progress=none printed: $(cat n.err)"
vmc clone T --full --name f3 > a.out 2> a.err || fail "clone auto"
[ ! -s a.err ] || fail "auto on a pipe printed for a short clone: $(cat a.err)"
expect_rc 2 vmc clone T --full --name f4 --progress=sometimes
err_matches "progress: .sometimes. is not auto"

# template copy: pre-staged once per pool, idempotent
mkdir "$T/p2"
ok vmc pool add p2 "$T/p2" -q
vmc template copy T --pool p2 > tc.out || fail "template copy"
grep -q "Template 'T' copied into pool 'p2'" tc.out || fail "template copy said: $(cat tc.out)"
copy=$(ls "$T"/p2/copy-T-disk0-*.qcow2)
[ -f "$copy" ] || fail "no copy in p2"
ino=$(stat -c %i "$copy")
vmc template copy T --pool p2 --json > tc.json || fail "template copy again"
[ "$(jget tc.json 'd["copied"]')" = False ] || fail "second copy: $(cat tc.json)"
[ "$(sql "SELECT count(*) FROM template_copies x JOIN pools p ON p.id = x.pool_id WHERE p.name = 'p2'")" = 1 ] ||
    fail "copies in p2: $(sql 'SELECT * FROM template_copies')"
ok vmc clone T --name l1 --pool p2 -q
[ "$(stat -c %i "$copy")" = "$ino" ] || fail "the clone made another copy"
[ "$(ls "$T"/p2/copy-T-disk0-*.qcow2 | wc -l)" = 1 ] || fail "two copies in p2"
expect_rc 3 vmc template copy nosuch --pool p2
expect_rc 3 vmc template copy T --pool nopool
exit 0
