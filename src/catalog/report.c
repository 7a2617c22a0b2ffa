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
    "SELECT id FROM volumes WHERE template_id = " ID " UNION ALL SELECT " \
    "x.id FROM volumes x JOIN template_copies c ON c.id = x.copy_id " \
    "WHERE c.template_id = " ID

/* The id of the volume whose file is @PATH: the pool whose directory
 * starts the path, then its (pool_id, file) index. */
#define VOLUME_BY_PATH(PATH) \
    "SELECT v.id FROM pools p JOIN volumes v ON v.pool_id = p.id AND " \
    "v.file = substr(" PATH ", length(p.path) + 2) WHERE " \
    "substr(" PATH ", 1, length(p.path) + 1) = p.path || '/'"

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

/* The rows of the tree reports (VMC_REPORT_VOLUME_TREE, _TEMPLATE_TREE) */
#define TREE_COLUMNS \
    "SELECT o.kind, o.name, o.path, o.virtual_size, p.kind AS pkind, " \
    "p.name AS pname FROM volume_owners o LEFT JOIN volume_owners p ON " \
    "p.id = o.parent_id "
#define TREE_ORDER \
    " ORDER BY CASE o.kind WHEN 'template' THEN 0 WHEN 'copy' THEN 1 " \
    "WHEN 'snapshot' THEN 2 ELSE 3 END, o.id"

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
        "WHERE v.pool_id = p.id) AS volumes, " CAT_POOL_MAX_CLONES_SQL("p")
        " AS max_clones_per_base FROM pools p ORDER BY p.id", 0 },
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
        "v.template_id = t.id) AS virtual_size, (SELECT group_concat(p.name "
        "|| CASE WHEN x.copy_no > 0 THEN '#' || CAST(x.copy_no AS TEXT) "
        "ELSE '' END, ',') FROM template_copies x JOIN pools p ON p.id = x.pool_id WHERE "
        "x.template_id = t.id AND x.state = 'ready') AS copies_in, (SELECT "
        "count(*) FROM (" CAT_DEPENDENTS_SQL(TEMPLATE_VOLUMES("t.id"),
                                             "SELECT id FROM own")
        " UNION SELECT 'vm', m.name FROM vms m WHERE m.template_id = t.id "
        "AND m.instant = 1) AS deps) AS dependent_count, t.origin, t.created FROM templates "
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
        "IN ('vm', 'snapshot') AND o.parent_id IN (" TEMPLATE_VOLUMES(
            "(SELECT id FROM templates WHERE name = ?1)") ") ORDER BY "
        "o.kind, o.name", 1 },
    [VMC_REPORT_TEMPLATE_EXPORT] = {
        "SELECT t.state, v.disk, o.path FROM templates t JOIN volumes v ON "
        "v.template_id = t.id JOIN volume_owners o ON o.id = v.id WHERE "
        "t.name = ?1 ORDER BY v.disk", 1 },
    [VMC_REPORT_VMS] = { NULL, 0 },  /* built by vms_sql() */
    [VMC_REPORT_TEMPLATE_TREE] = { NULL, 1 },  /* template_tree_rows() */
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
        TREE_COLUMNS "WHERE o.state = 'ready' AND o.id NOT IN (SELECT id "
        "FROM volumes WHERE kind = 'seed')" TREE_ORDER, 0 },
    [VMC_REPORT_FULL_VMS] = {
        "SELECT m.name, m.source, m.mechanism FROM vms m WHERE m.state = "
        "'ready' AND m.clone_type = 'full'", 0 },
    [VMC_REPORT_READY_TEMPLATE] = {
        "SELECT name FROM templates WHERE name = ?1 AND state = 'ready'",
        1 },
    [VMC_REPORT_TEMPLATE_FILES] = {
        "SELECT o.path FROM volume_owners o WHERE o.id IN ("
        TEMPLATE_VOLUMES("(SELECT id FROM templates WHERE name = ?1)")
        ") ORDER BY o.id", 1 },
    [VMC_REPORT_VM_FILES] = {
        "SELECT p.path || '/' || v.file AS path FROM volumes v JOIN pools p "
        "ON p.id = v.pool_id WHERE v.id IN (SELECT x.id FROM volumes x JOIN "
        "vms m ON m.id = x.vm_id WHERE m.name = ?1 UNION ALL SELECT x.id "
        "FROM volumes x JOIN snapshots s ON s.id = x.snapshot_id JOIN vms m "
        "ON m.id = s.vm_id WHERE m.name = ?1) ORDER BY v.id", 1 },
    [VMC_REPORT_VM_TOP_DISKS] = {
        "SELECT o.path AS file, po.path AS backing FROM volumes v JOIN "
        "volume_owners o ON o.id = v.id LEFT JOIN volume_owners po ON "
        "po.id = v.parent_id JOIN vms m ON m.id = v.vm_id WHERE m.name = "
        "?1 AND v.top = 1 ORDER BY v.disk", 1 },
    [VMC_REPORT_DISK_LAYERS] = {
        "WITH RECURSIVE c(id) AS (SELECT parent_id FROM volumes WHERE id = "
        "(" VOLUME_BY_PATH("?1") ") UNION ALL SELECT "
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
    [VMC_REPORT_INSTANT_FILES] = {
        "SELECT t.name AS template, 'ram' AS kind, i.ram_file AS path, "
        "i.ram_size AS size, t.id FROM instant_templates i JOIN templates t "
        "ON t.id = i.template_id WHERE t.state = 'ready' UNION ALL SELECT "
        "t.name, 'state', i.state_file, i.state_size, t.id FROM "
        "instant_templates i JOIN templates t ON t.id = i.template_id "
        "WHERE t.state = 'ready' ORDER BY 5, 2", 0 },
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

/* VMC_REPORT_TEMPLATE_TREE: the template's volumes and those under them
 * (deps.c's walk by index), then their rows by id, CAT_TREE_CHUNK ids
 * per statement. */
#define CAT_TREE_CHUNK 500

static int
cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int
template_tree_rows(struct vmc_catalog *cat, const char *name,
                   vmc_catalog_row_fn fn, void *opaque,
                   struct vmc_error *err)
{
    struct cat_ids own = { 0 }, deps = { 0 };
    int64_t tid = 0;
    size_t i, k;
    int r;

    r = cat_get_i64(cat, &tid, err, "SELECT id FROM templates WHERE name = "
                    "?", "s", name);
    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no template named '%s'", name);
    }
    if (r == 0) {
        r = cat_dependent_ids(cat, cat_owned_template, cat_owned_template,
                              tid, &own, &deps, err);
    }
    for (i = 0; r == 0 && i < deps.n; i++) {
        r = cat_ids_push(&own, deps.v[i]) < 0
            ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
    }
    if (r == 0 && own.n) {
        qsort(own.v, own.n, sizeof(*own.v), cmp_id);
    }
    for (i = 0; r == 0 && i < own.n; i += k) {
        char *sql;

        k = own.n - i < CAT_TREE_CHUNK ? own.n - i : CAT_TREE_CHUNK;
        sql = cat_ids_sql(TREE_COLUMNS "WHERE o.state = 'ready' AND NOT "
                          "EXISTS (SELECT 1 FROM volumes s WHERE s.id = o.id "
                          "AND s.kind = 'seed') AND o.id IN ", own.v + i, k,
                          TREE_ORDER);
        r = sql ? cat_query_rows(cat, sql, NULL, 0, fn, opaque, err)
                : vmc_error_set(err, -ENOMEM, "out of memory");
        free(sql);
    }
    cat_ids_release(&own);
    cat_ids_release(&deps);
    return r;
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
    if (which == VMC_REPORT_TEMPLATE_TREE) {
        return nargs != 1 ? vmc_error_set(err, -EINVAL, "catalog: the "
                                          "template tree takes a template")
               : template_tree_rows(cat, args[0], fn, opaque, err);
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
