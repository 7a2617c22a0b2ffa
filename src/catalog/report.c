/*
 * report.c - the catalog's named read-only reports (enum vmc_report in
 * vmclone-catalog.h): the SQL behind what the command line shows, so no
 * statement lives outside the catalog. Each report is one read-only
 * statement run through cat_query_rows(); only the VM list is built
 * at run time (one condition per label filter). A VM's labels come twice:
 * "k=v,k2=v2" for tables, and "HEX(k)=HEX(v),..." (labels_hex: a value
 * may hold any character) for JSON objects.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-internal.h"
#include "catalog-ops.h"

/* The volumes of template @ID (an SQL expression): its disks and its
 * copies' (delete.c's cat_owned_template with ?1 = @ID). */
#define TEMPLATE_VOLUMES(ID) \
    "SELECT id FROM volumes WHERE template_id = " ID " OR copy_id IN " \
    "(SELECT id FROM template_copies WHERE template_id = " ID ")"

/* The columns of one VM row (VMC_REPORT_VMS, VMC_REPORT_VM). */
#define VM_COLUMNS \
    "SELECT m.name, m.state, m.clone_type AS type, m.mechanism, " \
    "m.clone_requested AS requested, m.source, p.name AS pool, " \
    "m.cpus, m.memory_mb, (SELECT count(*) FROM volumes v WHERE " \
    "v.vm_id = m.id AND v.top = 1) AS disks, (SELECT sum(v.virtual_size) " \
    "FROM volumes v WHERE v.vm_id = m.id AND v.top = 1) AS virtual_size, " \
    "(SELECT group_concat(key || '=' || value, ',') FROM (SELECT key, " \
    "value FROM labels WHERE vm_id = m.id ORDER BY key) AS l) AS labels, " \
    "(SELECT group_concat(hex(key) || '=' || hex(value), ',') FROM (SELECT " \
    "key, value FROM labels WHERE vm_id = m.id ORDER BY key) AS l) AS " \
    "labels_hex, " \
    "m.created, m.expires, coalesce(m.request_key, m.request_id) AS " \
    "request_id, m.uuid FROM vms m JOIN pools p " \
    "ON p.id = m.pool_id "

struct report {
    const char *sql;
    size_t nargs;
};

static const struct report reports[] = {
    [VMC_REPORT_CONFIG] = {
        "SELECT key, value FROM config ORDER BY key", 0 },
    [VMC_REPORT_POOLS] = {
        "SELECT name, kind, path FROM pools ORDER BY id", 0 },
    [VMC_REPORT_POOL_LIST] = {
        "SELECT p.name, p.kind, p.type, p.path, (SELECT count(*) FROM "
        "volumes v "
        "WHERE v.pool_id = p.id) AS volumes FROM pools p ORDER BY p.id", 0 },
    [VMC_REPORT_POOL] = {
        "SELECT name AS pool, kind, type, path, rbd_pool, rbd_namespace, "
        "rbd_conf, rbd_id FROM pools WHERE name = ?1", 1 },
    [VMC_REPORT_POOL_VOLUMES] = {
        "SELECT o.path, o.virtual_size FROM volume_owners o JOIN volumes v "
        "ON v.id = o.id WHERE v.pool_id = (SELECT id FROM pools WHERE "
        "name = ?1)", 1 },
    [VMC_REPORT_TEMPLATE_EXISTS] = {
        "SELECT 1 AS x FROM templates WHERE name = ?1", 1 },
    [VMC_REPORT_RETIRED_TEMPLATES] = {
        "SELECT name FROM templates WHERE retired = 1", 0 },
    [VMC_REPORT_TEMPLATES] = {
        "SELECT t.name, t.state, t.retired, t.cpus, t.memory_mb, t.nics, "
        "(SELECT count(*) FROM volumes v WHERE v.template_id = t.id) AS "
        "disks, (SELECT sum(virtual_size) FROM volumes v WHERE "
        "v.template_id = t.id) AS virtual_size, (SELECT group_concat(p.name, "
        "',') FROM template_copies x JOIN pools p ON p.id = x.pool_id WHERE "
        "x.template_id = t.id AND x.state = 'ready') AS copies_in, (SELECT "
        "count(*) FROM (" CAT_DEPENDENTS_SQL(TEMPLATE_VOLUMES("t.id"),
                                             "SELECT id FROM own")
        ") AS deps) AS dependent_count, t.origin, t.created FROM templates "
        "t ORDER "
        "BY t.id", 0 },
    [VMC_REPORT_TEMPLATE] = {
        "SELECT t.name, t.state, t.retired, t.cpus, t.memory_mb, t.nics, "
        "t.origin, t.created, p.name AS pool FROM templates t JOIN pools p "
        "ON p.id = t.pool_id WHERE t.name = ?1", 1 },
    [VMC_REPORT_TEMPLATE_DISKS] = {
        "SELECT v.disk, o.path, v.virtual_size, v.seal FROM volumes v JOIN "
        "volume_owners o ON o.id = v.id JOIN templates t ON t.id = "
        "v.template_id WHERE t.name = ?1 ORDER BY v.disk", 1 },
    [VMC_REPORT_TEMPLATE_COPIES] = {
        "SELECT p.name AS pool, x.state, x.mechanism, x.created FROM "
        "template_copies x JOIN pools p ON p.id = x.pool_id JOIN templates "
        "t ON t.id = x.template_id WHERE t.name = ?1 ORDER BY x.id", 1 },
    [VMC_REPORT_TEMPLATE_USERS] = {
        "SELECT DISTINCT o.kind, o.name FROM volume_owners o WHERE o.kind "
        "IN ('vm', 'snapshot') AND o.parent_id IN (SELECT v.id FROM "
        "volumes v JOIN templates t ON t.name = ?1 WHERE v.template_id = "
        "t.id OR v.copy_id IN (SELECT id FROM template_copies WHERE "
        "template_id = t.id)) ORDER BY o.kind, o.name", 1 },
    [VMC_REPORT_TEMPLATE_EXPORT] = {
        "SELECT t.state, v.disk, o.path FROM templates t JOIN volumes v ON "
        "v.template_id = t.id JOIN volume_owners o ON o.id = v.id WHERE "
        "t.name = ?1 ORDER BY v.disk", 1 },
    [VMC_REPORT_VMS] = { NULL, 0 },  /* built by vms_sql() */
    [VMC_REPORT_VM] = { VM_COLUMNS "WHERE m.name = ?1", 1 },
    [VMC_REPORT_VM_CUSTOM] = {
        "SELECT m.ephemeral, (SELECT o.path FROM volumes v JOIN "
        "volume_owners o ON o.id = v.id WHERE v.vm_id = m.id AND v.kind = "
        "'seed' AND v.state = 'ready') AS seed FROM vms m WHERE m.name = "
        "?1", 1 },
    [VMC_REPORT_VM_NICS] = {
        "SELECT n.idx AS nic, n.mac FROM nics n JOIN vms m ON m.id = "
        "n.vm_id WHERE m.name = ?1 ORDER BY n.idx", 1 },
    [VMC_REPORT_VM_SNAPSHOTS] = {
        "SELECT s.name, s.state, s.created FROM snapshots s JOIN vms m ON "
        "m.id = s.vm_id WHERE m.name = ?1 ORDER BY s.id", 1 },
    [VMC_REPORT_VM_DISKS] = {
        "SELECT v.id, v.disk, o.path, v.virtual_size FROM volumes v JOIN "
        "volume_owners o ON o.id = v.id JOIN vms m ON m.id = v.vm_id WHERE "
        "m.name = ?1 AND v.top = 1 ORDER BY v.disk", 1 },
    [VMC_REPORT_SNAPSHOTS] = {
        "SELECT s.name, s.state, s.created, (SELECT count(*) FROM volumes "
        "v WHERE v.snapshot_id = s.id) AS disks, (SELECT count(*) FROM "
        "volumes k WHERE k.parent_id IN (SELECT id FROM volumes WHERE "
        "snapshot_id = s.id) AND k.vm_id IS DISTINCT FROM m.id AND k.snapshot_id "
        "NOT IN (SELECT id FROM snapshots WHERE vm_id = m.id)) AS "
        "dependents FROM snapshots s JOIN vms m ON m.id = s.vm_id WHERE "
        "m.name = ?1 ORDER BY s.id", 1 },
    [VMC_REPORT_VOLUME_CHAIN] = {
        "WITH RECURSIVE ch(id, depth) AS (SELECT CAST(?1 AS BIGINT), 0 "
        "UNION ALL SELECT "
        "v.parent_id, ch.depth + 1 FROM volumes v JOIN ch ON v.id = ch.id "
        "WHERE v.parent_id IS NOT NULL) SELECT o.path, o.kind, o.name, "
        "ch.depth AS depth FROM ch JOIN volume_owners o ON o.id = ch.id "
        "ORDER BY ch.depth", 1 },
    [VMC_REPORT_VOLUME_TREE] = {
        "SELECT o.kind, o.name, o.path, o.virtual_size, p.kind AS pkind, "
        "p.name AS pname FROM volume_owners o LEFT JOIN volume_owners p ON "
        "p.id = o.parent_id WHERE o.state = 'ready' AND o.id NOT IN "
        "(SELECT id FROM volumes WHERE kind = 'seed') ORDER BY CASE o.kind "
        "WHEN 'template' THEN 0 WHEN 'copy' THEN 1 WHEN 'snapshot' THEN 2 "
        "ELSE 3 END, o.id", 0 },
    [VMC_REPORT_FULL_VMS] = {
        "SELECT m.name, m.source, m.mechanism FROM vms m WHERE m.state = "
        "'ready' AND m.clone_type = 'full'", 0 },
    [VMC_REPORT_READY_TEMPLATE] = {
        "SELECT name FROM templates WHERE name = ?1 AND state = 'ready'",
        1 },
    [VMC_REPORT_TEMPLATE_FILES] = {
        "SELECT o.path FROM volumes v JOIN volume_owners o ON o.id = v.id "
        "JOIN templates t ON t.name = ?1 WHERE v.template_id = t.id OR "
        "v.copy_id IN (SELECT id FROM template_copies WHERE template_id = "
        "t.id) ORDER BY v.id", 1 },
    [VMC_REPORT_VM_FILES] = {
        "SELECT p.path || '/' || v.file AS path FROM volumes v JOIN pools p "
        "ON p.id = v.pool_id WHERE v.vm_id = (SELECT id FROM vms WHERE "
        "name = ?1) OR v.snapshot_id IN (SELECT s.id FROM snapshots s JOIN "
        "vms m ON m.id = s.vm_id WHERE m.name = ?1) ORDER BY v.id", 1 },
    [VMC_REPORT_VM_TOP_DISKS] = {
        "SELECT o.path AS file, po.path AS backing FROM volumes v JOIN "
        "volume_owners o ON o.id = v.id LEFT JOIN volume_owners po ON "
        "po.id = v.parent_id JOIN vms m ON m.id = v.vm_id WHERE m.name = "
        "?1 AND v.top = 1 ORDER BY v.disk", 1 },
    [VMC_REPORT_DISK_LAYERS] = {
        "WITH RECURSIVE c(id) AS (SELECT parent_id FROM volumes WHERE id = "
        "(SELECT id FROM volume_owners WHERE path = ?1) UNION ALL SELECT "
        "v.parent_id FROM volumes v JOIN c ON v.id = c.id WHERE "
        "v.parent_id IS NOT NULL) SELECT o.path AS file FROM volume_owners "
        "o JOIN c ON o.id = c.id WHERE o.parent_id IS NOT NULL", 1 },
    [VMC_REPORT_SNAPSHOT_LAYERS] = {
        "SELECT v.disk, o.path AS backing FROM volumes v JOIN volume_owners "
        "o ON o.id = v.id JOIN snapshots s ON s.id = v.snapshot_id JOIN vms "
        "m ON m.id = s.vm_id WHERE m.name = ?1 AND s.name = ?2 AND s.state "
        "= 'ready' ORDER BY v.disk", 2 },
    [VMC_REPORT_VM_TOPS_USED] = {
        "SELECT count(*) FROM volumes WHERE parent_id IN (SELECT v.id FROM "
        "volumes v JOIN vms m ON m.id = v.vm_id WHERE m.name = ?1 AND "
        "v.top = 1)", 1 },
    [VMC_REPORT_VM_LABELS] = {
        "SELECT key, value FROM labels WHERE vm_id = (SELECT id FROM vms "
        "WHERE name = ?1) ORDER BY key", 1 },
};

/* The VM list with one condition per (key, value) pair of labels. */
static char *
vms_sql(size_t npairs)
{
    static const char cond[] = " AND EXISTS (SELECT 1 FROM labels l WHERE "
                               "l.vm_id = m.id AND l.key = ?%zu AND "
                               "l.value = ?%zu)";
    size_t len = sizeof(VM_COLUMNS) + 32 + npairs * (sizeof(cond) + 40);
    char *sql = malloc(len), *p;
    size_t i;

    if (!sql) {
        return NULL;
    }
    p = sql + sprintf(sql, "%sWHERE TRUE", VM_COLUMNS);
    for (i = 0; i < npairs; i++) {
        p += sprintf(p, cond, 2 * i + 1, 2 * i + 2);
    }
    strcpy(p, " ORDER BY m.id");
    return sql;
}

int
vmc_catalog_report_rows(struct vmc_catalog *cat, enum vmc_report which,
                        const char *const *args, size_t nargs,
                        vmc_catalog_row_fn fn, void *opaque,
                        struct vmc_error *err)
{
    char *sql;
    int r;

    if ((unsigned)which >= sizeof(reports) / sizeof(reports[0])) {
        return vmc_error_set(err, -EINVAL, "catalog: no report %d",
                             (int)which);
    }
    if (which != VMC_REPORT_VMS) {
        if (nargs != reports[which].nargs) {
            return vmc_error_set(err, -EINVAL, "catalog: report %d takes "
                                 "%zu arguments", (int)which,
                                 reports[which].nargs);
        }
        return cat_query_rows(cat, reports[which].sql, args, nargs, fn,
                              opaque, err);
    }
    if (nargs % 2) {
        return vmc_error_set(err, -EINVAL, "catalog: the VM list takes "
                             "label keys and values in pairs");
    }
    sql = vms_sql(nargs / 2);
    if (!sql) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_query_rows(cat, sql, args, nargs, fn, opaque, err);
    free(sql);
    return r;
}
