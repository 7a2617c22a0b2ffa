#!/bin/bash
# rm: cleanup a CI job can run whatever happened before it (issue 13,
# point 3): several names at once, --label, --expired, --missing-ok (a
# VM that never got made is not an error), and --dry-run, which prints
# exactly the VMs, files and retired templates that would go, and the
# refusals that would stop it, and changes nothing.
. "$(dirname "$0")/../catalog/cat-lib.sh"

files() { find "$H/primary" "$H/secondary" -type f | sort; }

mk_template t.qcow2
ok vmc template import T t.qcow2 -q
ok vmc clone T --name 'job-%d' --count 3 --label job=42 -q
ok vmc clone T --name other --label job=7 -q
ok vmc clone T --name old --ttl 1s -q
ok vmc clone T --name keep -q

# several names
ok vmc rm job-1 job-2 -q
[ "$(sql "SELECT group_concat(name, ' ') FROM (SELECT name FROM vms ORDER BY name)")" = "job-3 keep old other" ] ||
    fail "rm job-1 job-2: $(sql 'SELECT name FROM vms')"

# a missing VM: exit 3, the others still removed; with --missing-ok, 0
ok vmc clone T --name a1 -q
expect_rc 3 vmc rm a1 never-made -q
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'a1'")" = 0 ] || fail "a1 kept"
ok vmc rm never-made --missing-ok > miss.out
grep -q "No VM 'never-made'" miss.out || fail "--missing-ok said: $(cat miss.out)"
vmc rm never-made --missing-ok --json > miss.json || fail "--missing-ok --json"
[ "$(jget miss.json 'd["missing"]')" = "['never-made']" ] || fail "missing: $(cat miss.json)"

# --dry-run by name: the files listed are the VM's, nothing changes
disk=$(sql "SELECT p.path || '/' || v.file FROM volumes v JOIN pools p ON p.id = v.pool_id
            JOIN vms m ON m.id = v.vm_id WHERE m.name = 'keep'")
files > before
ok vmc rm keep --dry-run > dry.out
[ "$(head -1 dry.out)" = "Would remove VM 'keep' (1 file)" ] || fail "dry run: $(cat dry.out)"
[ "$(sed -n 2p dry.out)" = "  $disk" ] || fail "dry run files: $(cat dry.out)"
files > after
cmp -s before after || fail "--dry-run changed files"
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'keep'")" = 1 ] || fail "--dry-run removed keep"
expect_rc 3 vmc rm nothere --dry-run
vmc rm keep --dry-run --json > dry.json || fail "--dry-run --json"
[ "$(jget dry.json 'd["would_remove"][0]["files"]')" = "['$disk']" ] || fail "dry json: $(cat dry.json)"
[ "$(jget dry.json 'd["removed"]')" = "[]" ] || fail "dry json removed: $(cat dry.json)"

# --dry-run of a VM with dependents: the refusal rm would meet (4)
ok vmc snapshot create keep s -q
ok vmc clone keep --snapshot s --name kid -q
expect_rc 4 vmc rm keep --dry-run
err_matches "would refuse.*kid"

# --label: only the matching VMs; --dry-run first
ok vmc rm --label job=42 --dry-run > ldry.out
[ "$(grep -c '^Would remove VM' ldry.out)" = 1 ] && grep -q "'job-3'" ldry.out || fail "label dry run: $(cat ldry.out)"
ok vmc rm --label job=42 -q
[ "$(sql "SELECT count(*) FROM vms WHERE name LIKE 'job-%'")" = 0 ] || fail "rm --label left job VMs"
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'other'")" = 1 ] || fail "rm --label removed other"
ok vmc rm --label job=42 > none.out
grep -q "No VM matches" none.out || fail "empty --label: $(cat none.out)"

# --expired: only old
sleep 1.2
ok vmc rm --expired --dry-run > edry.out
grep -q "Would remove VM 'old'" edry.out && ! grep -q "'other'\|'keep'" edry.out || fail "expired dry run: $(cat edry.out)"
ok vmc rm --expired -q
[ "$(sql "SELECT count(*) FROM vms WHERE name = 'old'")" = 0 ] || fail "rm --expired kept old"
[ "$(sql "SELECT count(*) FROM vms")" = 3 ] || fail "rm --expired: $(sql 'SELECT name FROM vms')"

# a retired template freed by the rm: announced by --dry-run too
ok vmc template import R t.qcow2 -q
ok vmc clone R --name r1 -q
ok vmc template retire R -q
ok vmc rm r1 --dry-run > rdry.out
grep -q "Would remove retired template 'R'" rdry.out || fail "retired dry run: $(cat rdry.out)"
ok vmc rm r1 > r.out
grep -q "Removed retired template 'R'" r.out || fail "retired: $(cat r.out)"

# usage: names and a filter together, or nothing
expect_rc 2 vmc rm other --label job=7
expect_rc 2 vmc rm
check_all_disks
fsck_clean
