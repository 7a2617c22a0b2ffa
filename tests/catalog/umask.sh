#!/bin/bash
# umask: every file the catalog creates honours the umask (issue 9 finding
# 10). Writable files get 0666 less the umask; read-only layers (template
# files and copies, frozen snapshot layers) drop only the write bits. Runs
# under umask 077 and 027: template import, first template copy, linked
# and full clones (of a template and of a VM), snapshot create, template
# create --from-vm, and a flatten that rewrites read-only layers.
. "$(dirname "$0")/cat-lib.sh"

mk_template t.qcow2
# mode FILE: octal permission bits
mode() { stat -c %a "$1"; }
# vfile OBJECT-SQL: the path of the volume the query selects
vfile() {
    sql "SELECT p.path || '/' || v.file FROM volumes v JOIN pools p ON p.id = v.pool_id WHERE $1"
}
expect_mode() {
    local f=$2 m
    m=$(mode "$f")
    [ "$m" = "$3" ] || fail "umask $1: $f is $m, expected $3"
}

for um in 077 027; do
    case $um in 077) rw=600 ro=400 ;; 027) rw=640 ro=440 ;; esac
    H=$T/home-$um
    export VMCLONE_HOME=$H
    (umask "$um" && vmc init -q) || fail "init under umask $um"
    (
        umask $um
        ok vmc template import t t.qcow2 -q
        ok vmc clone t --name lin -q
        ok vmc clone t --name full --full -q
        ok vmc snapshot create lin s1 -q
        ok vmc clone lin --name vfull --full -q
        ok vmc template create u --from-vm full -q
    )
    expect_mode $um "$(vfile "v.template_id IS NOT NULL AND v.file LIKE 'tmpl-t-%'")" $ro
    expect_mode $um "$(vfile "v.file LIKE 'copy-t-%'")" $ro
    expect_mode $um "$(vfile "v.file LIKE 'tmpl-u-%'")" $ro
    expect_mode $um "$(vfile "v.file LIKE 'full-%'")" $rw
    expect_mode $um "$(vfile "v.file LIKE 'vfull-%'")" $rw
    expect_mode $um "$(vfile "v.file LIKE 'lin-%' AND v.top = 1")" $rw
    expect_mode $um "$(vfile "v.file LIKE 'lin-%' AND v.top = 0")" $ro
    # a flatten rewrites the read-only layers and leaves them read-only
    ( umask $um; ok vmc flatten lin -q )
    for f in "$H"/primary/* "$H"/secondary/*; do
        m=$(mode "$f")
        [ $(( 8#$m & ~8#$rw & 8#777 )) = 0 ] ||
            fail "umask $um: $f is $m, more than $rw allows"
    done
    fsck_clean
    check_all_disks
done
exit 0
