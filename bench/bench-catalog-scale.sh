#!/bin/bash
# bench-catalog-scale.sh - the catalog at scale on PostgreSQL (issue 11):
# a synthetic catalog of TEMPLATES templates and VMS VMs (default 10,000 x
# 1,000,000; each template a volume in 'secondary' plus a copy in
# 'primary', each VM a top volume on its template's copy, one NIC, labels
# team=t(N%100) and ci=job(N%100000), and one finished journal row per
# VM, as the clones would have left), loaded with generate_series; then
# the wall time of whole `vm-clone` processes (connect, migrate check,
# recovery scan, query), best of 3: list --label (two labels), deps
# TEMPLATE, tree TEMPLATE, info VM, one linked clone of a real template,
# each connected directly (a new server backend per command, its caches
# cold) and through PgBouncer in session mode (tests/helpers/pgbouncer.sh:
# backends kept warm), beside the peer: psql running SELECT 1 the same
# two ways. Goal: each under 50 ms. Next to each time: the rows its statements read
# by sequential scan of volumes, vms, labels and journal (from
# pg_stat_user_tables; it does not depend on how busy the machine is: 0
# means every row came through an index).
#   usage: bench/bench-catalog-scale.sh [TEMPLATES VMS]
#   e.g.   bench/bench-catalog-scale.sh 1000 20000     (a quick subset)
# Needs a built tree (build/), PostgreSQL and PgBouncer
# (scripts/install-deps.sh).
# docs/design/scale-out.md has the figures measured with it.
set -eu
TEMPLATES=${1:-10000}
VMS=${2:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VMCLONE=${VMCLONE:-$ROOT/build/src/cli/vm-clone}
TEST_NAME=bench-catalog-scale
. "$ROOT/tests/helpers/pg.sh"
pg_start
W=$(mktemp -d)
trap 'pgb_stop; pg_stop; rm -rf "$W"' EXIT
pg_createdb scale
DB="$PG_CONNINFO dbname=scale"
export VMCLONE_HOME=$W/store
$VMCLONE init -q --catalog "$DB" --host-id bench
qemu-img create -q -f qcow2 "$W/t.qcow2" 16M
$VMCLONE template import -q real "$W/t.qcow2"
$VMCLONE clone real --name warm -q          # the copy in 'primary'

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
t0=$(date +%s%N)
psql "$DB" -qX -v ON_ERROR_STOP=1 -v nt="$TEMPLATES" -v nv="$VMS" <<'SQL'
\set ON_ERROR_STOP 1
SELECT max(id) AS tbase FROM templates \gset
SELECT max(id) AS vbase FROM vms \gset
INSERT INTO templates(name, state, cpus, memory_mb, nics, pool_id, created)
  SELECT 'tmpl-' || g, 'ready', 1, 512, 1, 2, 0 FROM generate_series(1, :nt) g;
INSERT INTO template_copies(template_id, pool_id, state, mechanism, created)
  SELECT id, 1, 'ready', 'copy', 0 FROM templates WHERE id > :tbase;
INSERT INTO volumes(pool_id, file, format, virtual_size, disk, state, template_id, created)
  SELECT 2, name || '-disk0.qcow2', 'qcow2', 16777216, 0, 'ready', id, 0
  FROM templates WHERE id > :tbase;
INSERT INTO volumes(pool_id, file, format, virtual_size, disk, state, copy_id, created)
  SELECT 1, 'copy-' || t.name || '-disk0.qcow2', 'qcow2', 16777216, 0, 'ready', c.id, 0
  FROM template_copies c JOIN templates t ON t.id = c.template_id WHERE t.id > :tbase;
INSERT INTO vms(name, uuid, state, pool_id, cpus, memory_mb, template_id, source,
                clone_requested, clone_type, created)
  SELECT 'vm-' || g, 'u-' || g, 'ready', 1, 1, 512, :tbase + 1 + g % :nt,
         'tmpl-' || (1 + g % :nt), 'linked', 'linked', 0
  FROM generate_series(1, :nv) g;
INSERT INTO volumes(pool_id, file, format, virtual_size, disk, parent_id, state, vm_id, top, created)
  SELECT 1, m.name || '-disk0.qcow2', 'qcow2', 16777216, 0, cv.id, 'ready', m.id, 1, 0
  FROM vms m JOIN template_copies c ON c.template_id = m.template_id
  JOIN volumes cv ON cv.copy_id = c.id WHERE m.id > :vbase;
INSERT INTO nics(vm_id, idx, mac)
  SELECT id, 0, '52:54:01:' || lpad(to_hex((id >> 16) & 255), 2, '0') || ':' ||
         lpad(to_hex((id >> 8) & 255), 2, '0') || ':' || lpad(to_hex(id & 255), 2, '0')
  FROM vms WHERE id > :vbase;
INSERT INTO labels(vm_id, key, value)
  SELECT id, 'team', 't' || (id % 100) FROM vms WHERE id > :vbase;
INSERT INTO labels(vm_id, key, value)
  SELECT id, 'ci', 'job' || (id % 100000) FROM vms WHERE id > :vbase;
INSERT INTO journal(op, target, state, pid, started, finished, host_id)
  SELECT 'clone', 'vm-' || g, 'done', 1, 0, 0, 'bench'
  FROM generate_series(1, :nv) g;
VACUUM ANALYZE;
SQL
echo "load: $TEMPLATES templates, $VMS VMs in $(ms "$t0") ms ($(psql "$DB" -AtqX -c "SELECT pg_size_pretty(pg_database_size('scale'))"))"

T=$((TEMPLATES / 2))
V=$((VMS * 7 / 9))
VMID=$(psql "$DB" -AtqX -c "SELECT id FROM vms WHERE name = 'vm-$V'")
JOB=$(psql "$DB" -AtqX -c "SELECT value FROM labels WHERE vm_id = $VMID AND key = 'ci'")
TEAM=$(psql "$DB" -AtqX -c "SELECT value FROM labels WHERE vm_id = $VMID AND key = 'team'")
# rows read by sequential scans of the big tables so far
scanned() {
    psql "$DB" -AtqX -c "SELECT coalesce(sum(seq_tup_read), 0) FROM
        pg_stat_user_tables WHERE relname IN ('volumes', 'vms', 'labels',
        'journal')"
}
# the same store through PgBouncer in session mode (a copy of its
# settings naming the pooler): the pooler keeps the server backends, so
# a command neither waits for a new backend nor warms its caches
. "$ROOT/tests/helpers/pgbouncer.sh"
pgb_start scale
cp -a "$W/store" "$W/pooled"
sed -i "s|^catalog=.*|catalog=$PGB_CONNINFO|" "$W/pooled/catalog.conf"
P=$W/pooled

printf '%-36s %8s %8s  %6s  %s\n' operation direct pooled goal "rows scanned"
row() {   # NAME MS POOLED_MS ROWS
    printf '%-36s %8s %8s  %6s  %s\n' "$1" "$2" "$3" \
        "$([ "${3:-$2}" -lt 50 ] && echo '<50 ok' || echo '<50 NO')" "$4"
}
best3() {   # HOME ARGS...: best of 3 whole processes, in ms
    local home=$1 best=999999 i t n
    shift
    for i in 1 2 3; do
        t=$(date +%s%N)
        VMCLONE_HOME=$home "$@" > "$W/out" 2>&1 || { echo "failed: $(head -3 "$W/out")" >&2; echo 999999; return 0; }
        n=$(ms "$t")
        [ "$n" -lt "$best" ] && best=$n
    done
    echo "$best"
}
run() {   # NAME ARGS...: direct and pooled
    local name=$1 s0 d p
    shift
    s0=$(scanned)
    d=$(best3 "$VMCLONE_HOME" "$@")
    sleep 0.5       # the backends' statistics reach pg_stat at their exit
    n=$(( ($(scanned) - s0) / 3 ))
    p=$(best3 "$P" "$@")
    row "$name" "$d" "$p" "$n"
}
PSQL="$PG_BIN/psql"     # the program itself: Debian's psql is a Perl wrapper
row "peer: psql -c 'SELECT 1'" "$(best3 "$W" "$PSQL" "$DB" -AtqXc "SELECT 1")" \
    "$(best3 "$W" "$PSQL" "$PGB_CONNINFO" -AtqXc "SELECT 1")" -
run "version (no store)" "$VMCLONE" --version
run "list --label ci=$JOB --label team=$TEAM" "$VMCLONE" list --label "ci=$JOB" --label "team=$TEAM" --json
run "deps tmpl-$T" "$VMCLONE" deps "tmpl-$T" --json
run "tree tmpl-$T" "$VMCLONE" tree "tmpl-$T" --json
run "info vm-$V" "$VMCLONE" info "vm-$V" --json
once() {   # HOME ARGS...: one whole process, in ms
    local home=$1 t
    shift
    t=$(date +%s%N)
    VMCLONE_HOME=$home "$VMCLONE" "$@" -q || echo "failed: $*" >&2
    ms "$t"
}
s0=$(scanned)
d=$(once "$VMCLONE_HOME" clone real --name one)
sleep 0.5
n=$(($(scanned) - s0))
p=$(once "$P" clone real --name two)
row "clone real (linked, one)" "$d" "$p" "$n"
s0=$(scanned)
d=$(once "$VMCLONE_HOME" rm one)
sleep 0.5
n=$(($(scanned) - s0))
p=$(once "$P" rm two)
row "rm one" "$d" "$p" "$n"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
psql "$DB" -AtqX -c "SET enable_seqscan = off" -c "EXPLAIN SELECT id, coalesce(host_id, '') FROM journal WHERE state = 'running' AND (host_id = 'bench' OR host_id IS NULL) ORDER BY id" | sed 's/^/recovery plan: /'
