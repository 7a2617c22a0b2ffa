/*
 * vm-set.c - change a VM after its clone (vm-clone vm set, issue 13 point
 * 5): labels, expiry, CPUs, memory, NIC count. The row is read first and
 * every update is a compare-and-set on what was read, so a VM that
 * another command changed (or began deleting) meanwhile is refused with
 * -EAGAIN and left as that command made it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-ops.h"
#include "vmclone-catalog-admin.h"

/* The VM's labels as one text (NULL without any): part of the row's
 * compare-and-set. */
#define LABELS_SQL \
    "(SELECT group_concat(key || '=' || value, '\n') FROM (SELECT " \
    "key, value FROM labels WHERE vm_id = vms.id ORDER BY key) AS l)"
#define NICS_SQL "(SELECT count(*) FROM nics WHERE vm_id = vms.id)"
/* The expiry as an integer, compared exactly (a REAL read back as text
 * may not round-trip). */
#define EXPIRES_US_SQL "coalesce(CAST(expires * 1000000 AS INTEGER), -1)"

/* The row as read. */
struct vm_row {
    int64_t id, cpus, memory_mb, nics;
    int64_t expires_us;     /* microseconds; -1: never (exact to compare) */
    char *labels;           /* NULL: none */
};

static int
read_row(struct vmc_catalog *cat, const char *name, struct vm_row *v,
         struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT id, state, cpus, memory_mb, "
                        EXPIRES_US_SQL ", " LABELS_SQL ", " NICS_SQL
                        " FROM vms WHERE name = ?", "s", name);

    if (r == 0 && (r = cat_step(cat, st, err)) == 0) {
        r = vmc_error_set(err, -ENOENT, "no VM named '%s'", name);
    } else if (r > 0 && strcmp(cat_col(st, 1), "ready")) {
        r = vmc_error_set(err, -EAGAIN, "VM '%s' is being %s; retry when "
                          "that is done", name,
                          !strcmp(cat_col(st, 1), "creating") ? "created"
                                                              : "deleted");
    } else if (r > 0) {
        v->id = cat_col_i64(st, 0);
        v->cpus = cat_col_i64(st, 2);
        v->memory_mb = cat_col_i64(st, 3);
        v->expires_us = cat_col_i64(st, 4);
        v->labels = cat_col(st, 5) ? strdup(cat_col(st, 5)) : NULL;
        v->nics = cat_col_i64(st, 6);
        r = (cat_col(st, 5) && !v->labels)
                ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
    }
    cat_finalize(st);
    return r;
}

/* The compare-and-set of the row: new hardware and expiry, if the row
 * is still as read. */
static int
update_row(struct vmc_catalog *cat, const char *name, const struct vm_row *v,
           const struct vmc_vm_changes *c, struct vmc_error *err)
{
    double expires = -1;
    int r;

    if (c->set_ttl && c->ttl_seconds) {
        expires = cat_now() + (double)c->ttl_seconds;
    }
    r = cat_exec(cat, err, "UPDATE vms SET cpus = ?, memory_mb = ?, "
                 "expires = CASE WHEN ? = 1 THEN nullif(?, -1) ELSE expires END "
                 "WHERE id = ? AND state = 'ready' AND cpus = ? AND "
                 "memory_mb = ? AND " EXPIRES_US_SQL " = ? AND " LABELS_SQL
                 " IS NOT DISTINCT FROM ? AND " NICS_SQL " = ?", "IIidIIIIsI",
                 c->cpus ? (int64_t)c->cpus : v->cpus,
                 c->memory_mb ? (int64_t)c->memory_mb : v->memory_mb,
                 (int)c->set_ttl, expires, v->id, v->cpus, v->memory_mb,
                 v->expires_us, v->labels, v->nics);
    if (r == 0 && cat_changes(cat) != 1) {
        r = vmc_error_set(err, -EAGAIN, "VM '%s' was changed by another "
                          "command meanwhile; nothing changed: retry", name);
    }
    return r;
}

/* Labels and NICs, inside the row's transaction. */
static int
update_children(struct vmc_catalog *cat, const struct vm_row *v,
                const struct vmc_vm_changes *c, struct vmc_error *err)
{
    size_t i;
    int r = 0;

    for (i = 0; r == 0 && i < c->nunlabels; i++) {
        r = cat_exec(cat, err, "DELETE FROM labels WHERE vm_id = ? AND "
                     "key = ?", "Is", v->id, c->unlabels[i]);
    }
    for (i = 0; r == 0 && i < c->nlabels; i++) {
        r = cat_exec(cat, err, "INSERT INTO labels(vm_id, key, value) "
                     "VALUES (?, ?, ?) ON CONFLICT (vm_id, key) DO UPDATE "
                     "SET value = excluded.value", "Iss", v->id,
                     c->labels[i].key, c->labels[i].value);
    }
    if (r == 0 && c->set_nics && c->nics < (unsigned)v->nics) {
        r = cat_exec(cat, err, "DELETE FROM nics WHERE vm_id = ? AND idx >= "
                     "?", "Ii", v->id, (int)c->nics);
    } else if (r == 0 && c->set_nics) {
        r = cat_add_nics(cat, v->id, (unsigned)v->nics, c->nics, err);
    }
    return r;
}

int
vmc_catalog_vm_set(struct vmc_catalog *cat, const char *name,
                   const struct vmc_vm_changes *c, struct vmc_error *err)
{
    struct vm_row v = { 0 };
    size_t i;
    int r = 0;

    for (i = 0; r == 0 && i < c->nlabels; i++) {
        r = cat_check_label(c->labels[i].key, c->labels[i].value, err);
    }
    if (r == 0 && c->set_nics && c->nics > 32) {
        r = vmc_error_set(err, -EINVAL, "at most 32 NICs, not %u", c->nics);
    }
    if (r == 0) {
        r = read_row(cat, name, &v, err);
        cat_crashpoint("vm-set.after-read");
    }
    if (r == 0 && (r = cat_begin(cat, err)) == 0) {
        r = update_row(cat, name, &v, c, err);
        if (r == 0) {
            r = update_children(cat, &v, c, err);
        }
        if (r == 0) {
            r = cat_commit(cat, err);
        } else {
            cat_rollback(cat);
        }
    }
    free(v.labels);
    return r;
}
