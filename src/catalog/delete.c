/*
 * delete.c - deleting a set of volumes with their owner rows (VM,
 * snapshot, template, template copy) as one journaled operation, the
 * dependents that refuse it, and freeing retired templates nothing
 * depends on any more.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-internal.h"
#include "catalog-ops.h"

/* ------------------------------------------------------------ deletion */

int
cat_dependents_line(struct vmc_catalog *cat, const char *owned_sql,
                    int64_t arg, char **line, size_t *n,
                    struct vmc_error *err)
{
    return cat_dependents_line2(cat, owned_sql, owned_sql, arg, line, n,
                                err);
}

/* How many dependents a refusal names before "and N more". */
#define DEPENDENTS_SHOWN 5

/* Kind descending (vm, template, snapshot, copy), then name. */
static int
by_kind_desc(const void *a, const void *b)
{
    const struct cat_dep *x = a, *y = b;
    int c = strcmp(y->kind, x->kind);

    return c ? c : strcmp(x->name, y->name);
}

/* The dependents (deps.c) as "kind 'name', ..." (the first
 * DEPENDENTS_SHOWN, VMs first, then "and N more") in *line, their number
 * in *n, and the first VM among them (NULL if none; @first may be NULL). */
static int
dependents_scan(struct vmc_catalog *cat, const char *owned_sql,
                const char *exclude_sql, int64_t arg, char **line, size_t *n,
                char **first, struct vmc_error *err)
{
    struct cat_dep *d = NULL;
    char buf[1024];
    size_t len = 0, shown = 0, i;
    int r;

    *line = NULL;
    *n = 0;
    buf[0] = '\0';
    r = cat_dependents_named(cat, owned_sql, exclude_sql, arg, &d, n, err);
    if (r < 0) {
        return r;
    }
    if (*n) {
        qsort(d, *n, sizeof(*d), by_kind_desc);
    }
    for (i = 0; r == 0 && i < *n; i++) {
        const char *kind = d[i].kind, *name = d[i].name;

        if (first && !*first && !strcmp(kind, "vm") &&
            !(*first = strdup(name))) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        }
        if (shown < DEPENDENTS_SHOWN && len < sizeof(buf) - 200) {
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s '%s'",
                                    len ? ", " : "",
                                    !strcmp(kind, "copy") ? "template copy"
                                                          : kind, name);
            shown++;
        }
    }
    cat_deps_release(d, *n);
    if (r == 0 && *n > shown) {
        snprintf(buf + len, sizeof(buf) - len, " and %zu more", *n - shown);
    }
    if (r == 0 && !(*line = strdup(buf))) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return r;
}

int
cat_dependents_line2(struct vmc_catalog *cat, const char *owned_sql,
                     const char *exclude_sql, int64_t arg, char **line,
                     size_t *n, struct vmc_error *err)
{
    return dependents_scan(cat, owned_sql, exclude_sql, arg, line, n, NULL,
                           err);
}

int
cat_refuse_dependents(struct vmc_catalog *cat, const char *owned_sql,
                      const char *exclude_sql, int64_t arg, const char *what,
                      const char *target, struct vmc_error *err)
{
    char *line = NULL, *first = NULL, also[256] = "";
    size_t n = 0;
    int r = dependents_scan(cat, owned_sql, exclude_sql, arg, &line, &n,
                            &first, err);

    if (r == 0 && n && !strcmp(what, "template") &&
        !strstr(line, "template '")) {
        snprintf(also, sizeof(also), "; or all at once: 'vm-clone template "
                 "rm %s --flatten-dependents'", target);
    } else if (r == 0 && n && strstr(line, "template '")) {
        snprintf(also, sizeof(also), "; a frozen template on it goes with "
                 "'vm-clone template rm'");
    }
    if (r == 0 && n && !strcmp(what, "template") &&
        cat_get_i64(cat, &(int64_t){ 0 }, NULL, "SELECT m.id FROM vms m "
                    "JOIN templates t ON t.id = m.template_id WHERE t.name = "
                    "? AND m.instant = 1 LIMIT 1", "s", target) == 0) {
        r = vmc_error_set(err, -ENOTEMPTY, "instant template '%s' has %zu "
                          "dependent%s: %s (all: 'vm-clone deps %s'); its "
                          "instant clones resume its RAM and state files "
                          "even when flattened: remove them first ('vm-clone "
                          "rm %s')", target, n, n == 1 ? "" : "s", line,
                          target, first ? first : "VM");
    } else if (r == 0 && n) {
        r = vmc_error_set(err, -ENOTEMPTY, "%s '%s' has %zu dependent%s: %s "
                          "(all: 'vm-clone deps %s'); make a VM standalone with "
                          "'vm-clone flatten %s' or remove it with 'vm-clone "
                          "rm %s'%s", what, target, n, n == 1 ? "" : "s",
                          line, target, first ? first : "VM",
                          first ? first : "VM", also);
    }
    free(line);
    free(first);
    return r;
}

/* Allocated bytes of the files (and seal sidecars) that journal @jid
 * is deleting. */
static uint64_t
set_bytes(struct vmc_catalog *cat, int64_t jid)
{
    struct cat_strv paths = { 0 };
    uint64_t t = 0;
    size_t i;

    cat_collect(cat, &paths, NULL, "SELECT p.path || '/' || v.file FROM "
                "volumes v JOIN pools p ON p.id = v.pool_id WHERE "
                "v.journal_id = ? AND v.state = 'deleting'", jid);
    for (i = 0; i < paths.n; i++) {
        struct stat st;
        char *seal = NULL;

        if (stat(paths.v[i], &st) == 0) {
            t += (uint64_t)st.st_blocks * 512;
        }
        if (asprintf(&seal, "%s.seal", paths.v[i]) >= 0 &&
            stat(seal, &st) == 0) {
            t += (uint64_t)st.st_blocks * 512;
        }
        free(seal);
    }
    cat_strv_release(&paths);
    return t + cat_instant_deleting_bytes(cat, jid);
}

/* Phrase a transient state for a refusal. */
static const char *
state_phrase(const char *state)
{
    return !strcmp(state, CAT_CREATING) ? "being created"
           : !strcmp(state, CAT_DELETING) ? "being removed" : state;
}

/* A volume of the set that another operation is creating or deleting
 * (a template copy a first clone is still making, a VM's new snapshot
 * layer...) refuses the delete with -EBUSY, naming it. */
static int
refuse_busy(struct vmc_catalog *cat, const char *desc, const char *op,
            const char *owned_sql, int64_t id, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    char *sql = NULL;
    int r;

    if (asprintf(&sql, "SELECT kind, name, state FROM volume_owners WHERE "
                 "id IN (%s) AND state != 'ready' ORDER BY id LIMIT 1",
                 owned_sql) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_prepare(cat, &st, err, sql, "I", id);
    if (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        const char *kind = cat_col(st, 0);

        r = vmc_error_set(err, -EBUSY, "%s changed state during this %s: "
                          "%s '%s' is %s by another operation (try again "
                          "when it is done)", desc, op,
                          !strcmp(kind, "copy") ? "template copy"
                          : !strcmp(kind, "vm") ? "a disk of VM" : kind,
                          cat_col(st, 1), state_phrase(cat_col(st, 2)));
    }
    cat_finalize(st);
    free(sql);
    return r;
}

/* Lock the set's volume rows before counting what depends on them (on
 * PostgreSQL: FOR UPDATE, in id order so that two deletes cannot
 * deadlock); an operation adding a dependent takes FOR SHARE on its
 * parent, so one of the two waits for the other's commit. */
static int
lock_set(struct vmc_catalog *cat, const char *owned_sql, int64_t id,
         struct vmc_error *err)
{
    char *sql = NULL;
    int r;

    if (asprintf(&sql, "SELECT id FROM volumes WHERE id IN (%s) ORDER BY "
                 "id FOR UPDATE", owned_sql) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_exec(cat, err, sql, "I", id);
    free(sql);
    return r;
}

/* ready -> deleting for every volume of the set and every owner row, as
 * compare-and-sets: a row another operation is creating or deleting
 * refuses the delete (-EBUSY) instead of being taken over. */
static int
mark_deleting(struct cat_op *o, const char *desc, const char *owned_sql,
              const struct cat_owner_rows *owners, int64_t id,
              struct vmc_error *err)
{
    char *count = NULL, *update = NULL;
    int64_t n = 0;
    int r = 0;
    unsigned i;

    if (asprintf(&count, "SELECT count(*) FROM volumes WHERE id IN (%s)",
                 owned_sql) < 0 ||
        asprintf(&update, "UPDATE volumes SET state = 'deleting', "
                 "journal_id = ?2 WHERE id IN (%s) AND state = 'ready'",
                 owned_sql) < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        r = cat_get_i64(o->cat, &n, err, count, "I", id);
    }
    if (r == 0) {
        r = cat_op_cas(o, (int)n, desc, err, update, "II", id, o->jid);
    }
    for (i = 0; r == 0 && owners[i].table; i++) {
        free(count);
        free(update);
        update = NULL;
        if (asprintf(&count, "SELECT count(*) FROM %s WHERE %s",
                     owners[i].table, owners[i].where) < 0 ||
            asprintf(&update, "UPDATE %s SET state = 'deleting', journal_id "
                     "= ?2 WHERE (%s) AND state = 'ready'", owners[i].table,
                     owners[i].where) < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        r = cat_get_i64(o->cat, &n, err, count, "I", id);
        if (r == 0) {
            r = cat_op_cas(o, (int)n, desc, err, update, "II", id, o->jid);
        }
    }
    free(count);
    free(update);
    return r;
}

/*
 * Delete the volumes selected by @owned_sql (bound to @id) and the owner
 * rows of @owners (each selected by its WHERE bound to ?1 = @id, ended by
 * a NULL table), refusing with -EBUSY when anything outside the set
 * depends on it or another operation is creating or deleting part of it.
 */
int
cat_delete_set(struct vmc_catalog *cat, const char *op, const char *what,
               const char *target, const char *owned_sql,
               const struct cat_owner_rows *owners, int64_t id,
               struct vmc_error *err)
{
    char *state = NULL, *desc = NULL, *fixed = NULL;
    uint64_t bytes = 0;
    struct cat_op o;
    int r;

    cat_op_init(&o, cat, op);
    if (asprintf(&desc, "%s '%s'", what, target) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_begin(cat, err);
    if (r < 0) {
        free(desc);
        return r;
    }
    /* the set's ids, read once: every statement below then finds its
     * rows by primary key */
    r = cat_owned_fixed(cat, owned_sql, NULL, id, &fixed, err);
    if (r == 0) {
        r = lock_set(cat, fixed, id, err);
    }
    if (r == 0) {
        r = refuse_busy(cat, desc, op, fixed, id, err);
    }
    if (r == 0) {
        r = cat_refuse_dependents(cat, fixed, fixed, id, what, target, err);
    }
    if (r == 0) {
        r = cat_op_begin(&o, target, err);
    }
    if (r == 0) {
        r = mark_deleting(&o, desc, fixed, owners, id, err);
    }
    free(desc);
    free(fixed);
    r = cat_op_stage(&o, r, err);
    if (r < 0) {
        cat_op_end(&o);
        return r;
    }
    cat_crashpoint("delete.after-mark");
    if (cat->deleted) {
        bytes = set_bytes(cat, o.jid);
    }
    r = cat_op_finish(&o, err);
    cat_op_end(&o);
    if (r == 0 && cat->deleted &&
        cat_get_str(cat, &state, NULL, "SELECT state FROM journal WHERE "
                    "id = ?", "I", o.jid) == 0 &&
        !strcmp(state, CAT_J_DONE)) {
        cat->deleted(what, target, op, bytes, cat->deleted_opaque);
    }
    free(state);
    return r;
}

const char cat_owned_template[] =
    "SELECT id FROM volumes WHERE template_id = ?1 UNION ALL SELECT v.id "
    "FROM volumes v JOIN template_copies c ON c.id = v.copy_id WHERE "
    "c.template_id = ?1";
const char cat_owned_copy[] =
    "SELECT id FROM volumes WHERE copy_id = ?1";
const char cat_owned_vm[] =
    "SELECT id FROM volumes WHERE vm_id = ?1 UNION ALL SELECT v.id FROM "
    "volumes v JOIN snapshots s ON s.id = v.snapshot_id WHERE s.vm_id = ?1";
const char cat_owned_snapshot[] =
    "SELECT id FROM volumes WHERE snapshot_id = ?1";

static const struct cat_owner_rows template_owners[] = {
    { "templates", "id = ?1" },
    { "template_copies", "template_id = ?1" },
    { NULL, NULL },
};

int
cat_template_delete(struct vmc_catalog *cat, int64_t tid, const char *name,
                    struct vmc_error *err)
{
    return cat_delete_set(cat, "template-rm", "template", name,
                          cat_owned_template, template_owners, tid, err);
}

/* Does a VM or snapshot layer sit directly on template @tid's volumes
 * (its disks, its copies')? By index: the set's ids, then their
 * children. */
static int
template_used(struct vmc_catalog *cat, int64_t tid, bool *used,
              struct vmc_error *err)
{
    struct cat_ids own = { 0 };
    int64_t n = 0;
    char *sql = NULL;
    int r = cat_ids_select(cat, &own, cat_owned_template, tid, err);

    if (r == 0 && own.n) {
        /* a frozen template's layers count too (freeze.c) */
        sql = cat_ids_sql("SELECT count(*) FROM volumes WHERE parent_id "
                          "IN ", own.v, own.n, "");
        r = sql ? cat_get_i64(cat, &n, err, sql, NULL)
                : vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0 && n == 0) {     /* instant clones, whatever their disks */
        r = cat_get_i64(cat, &n, err, "SELECT count(*) FROM vms WHERE "
                        "template_id = ? AND instant = 1", "I", tid);
    }
    *used = n > 0;
    free(sql);
    cat_ids_release(&own);
    return r;
}

int
cat_free_retired(struct vmc_catalog *cat, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    struct cat_strv names = { 0 };
    int64_t *ids = NULL;
    size_t i, n = 0;
    int r;

    r = cat_prepare(cat, &st, err, "SELECT t.id, t.name FROM templates t "
                    "WHERE t.retired = 1 AND t.state = 'ready'", NULL);
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        int64_t *nids = realloc(ids, (n + 1) * sizeof(*ids));

        r = nids ? cat_strv_push(&names, cat_col(st, 1)) : -ENOMEM;
        if (!nids || r < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        ids = nids;
        ids[n++] = cat_col_i64(st, 0);
    }
    cat_finalize(st);
    for (i = 0; r == 0 && i < n; i++) {
        bool used = false;

        r = template_used(cat, ids[i], &used, err);
        if (r < 0 || used) {
            continue;
        }
        r = cat_template_delete(cat, ids[i], names.v[i], err);
        if (r == -EBUSY || r == -ENOTEMPTY) {
            r = 0;      /* a clone appeared meanwhile */
        }
    }
    free(ids);
    cat_strv_release(&names);
    return r;
}

/* --------------------------------------------------------- dependents */

int
cat_resolve_entity(struct vmc_catalog *cat, const char *kind,
                   const char *name, const char **owned_sql, int64_t *id,
                   const char **kind_out, struct vmc_error *err)
{
    const char *at = strchr(name, '@');
    int r = -ENOENT;

    if (at && (!kind || !strcmp(kind, "snapshot"))) {
        char *vm = strndup(name, (size_t)(at - name));

        if (!vm) {
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
        r = cat_get_i64(cat, id, err, "SELECT s.id FROM snapshots s JOIN "
                        "vms m ON m.id = s.vm_id WHERE m.name = ? AND "
                        "s.name = ?", "ss", vm, at + 1);
        free(vm);
        *owned_sql = cat_owned_snapshot;
        *kind_out = "snapshot";
    }
    if (r == -ENOENT && !at && (!kind || !strcmp(kind, "template"))) {
        r = cat_get_i64(cat, id, err, "SELECT id FROM templates WHERE "
                        "name = ?", "s", name);
        *owned_sql = cat_owned_template;
        *kind_out = "template";
    }
    if (r == -ENOENT && !at && (!kind || !strcmp(kind, "vm"))) {
        r = cat_get_i64(cat, id, err, "SELECT id FROM vms WHERE name = ?",
                        "s", name);
        *owned_sql = cat_owned_vm;
        *kind_out = "vm";
    }
    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no %s named '%s'",
                             kind ? kind : "template, VM or VM@SNAPSHOT",
                             name);
    }
    return r;
}

int
vmc_catalog_dependents(struct vmc_catalog *cat, const char *kind,
                       const char *name, char ***out, size_t *n,
                       struct vmc_error *err)
{
    struct cat_strv v = { 0 };
    const char *owned = NULL, *k = NULL;
    struct cat_dep *d = NULL;
    size_t nd = 0, i;
    int64_t id = 0;
    int r;

    r = cat_resolve_entity(cat, kind, name, &owned, &id, &k, err);
    if (r == 0) {
        r = cat_dependents_named(cat, owned, owned, id, &d, &nd, err);
    }
    for (i = 0; r == 0 && i < nd; i++) {
        char *line = NULL;

        if (asprintf(&line, "%s %s", d[i].kind, d[i].name) < 0 ||
            cat_strv_push(&v, line) < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        }
        free(line);
    }
    cat_deps_release(d, nd);
    if (r < 0) {
        cat_strv_release(&v);
        return r;
    }
    *out = v.v;
    *n = v.n;
    return 0;
}
