/*
 * deps.c - the dependents of a set of volumes, found by index: the walk
 * goes down volumes.parent_id one level at a time from C, each level one
 * statement per CAT_IDS_CHUNK ids ("parent_id IN (1, 2, ...)", literal
 * ids read from the catalog), so it costs an index lookup per volume it
 * finds on SQLite and on PostgreSQL alike. A recursive CTE did the same
 * in one statement, but PostgreSQL plans its recursive step blind (a
 * guessed row count) and joined it to every volume: 4.5 s for one
 * template of a 20k-VM catalog (docs/design/scale-out.md). An instant
 * template's instant clones depend on it through its RAM and state files
 * too (instant.c), whatever their disks' chain: named with the rest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-internal.h"
#include "catalog-ops.h"

/* Volume ids per statement of the walk and of the name lookups. */
#define CAT_IDS_CHUNK 500
/* More levels than this is a parent_id cycle (a damaged catalog): the
 * chain depth is capped far below (config max-chain-depth). */
#define CAT_MAX_LEVELS 4096

int
cat_ids_push(struct cat_ids *s, int64_t id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        int64_t *v = realloc(s->v, cap * sizeof(*v));

        if (!v) {
            return -ENOMEM;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = id;
    return 0;
}

void
cat_ids_release(struct cat_ids *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static bool
ids_has(const struct cat_ids *sorted, int64_t id)
{
    return sorted->n && bsearch(&id, sorted->v, sorted->n, sizeof(id),
                                cmp_i64);
}

/* Append the first column of @sql's rows, @sql bound to one int64 @arg
 * (or to nothing when @fmt is NULL). */
static int
ids_select(struct vmc_catalog *cat, struct cat_ids *out, const char *sql,
           const char *fmt, int64_t arg, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = fmt ? cat_prepare(cat, &st, err, sql, fmt, arg)
                : cat_prepare(cat, &st, err, sql, NULL);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = cat_ids_push(out, cat_col_i64(st, 0)) < 0
            ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
    }
    cat_finalize(st);
    return r;
}

int
cat_ids_select(struct vmc_catalog *cat, struct cat_ids *out, const char *sql,
               int64_t arg, struct vmc_error *err)
{
    return ids_select(cat, out, sql, "I", arg, err);
}

char *
cat_ids_sql(const char *head, const int64_t *ids, size_t n,
            const char *tail)
{
    size_t len = strlen(head) + strlen(tail) + n * 22 + 8, i;   /* "(NULL)" */
    char *sql = malloc(len), *p;

    if (!sql) {
        return NULL;
    }
    p = sql + sprintf(sql, "%s(%s", head, n ? "" : "NULL");
    for (i = 0; i < n; i++) {
        p += sprintf(p, "%s%" PRId64, i ? "," : "", ids[i]);
    }
    sprintf(p, ")%s", tail);
    return sql;
}

/* Append to @out the children of @ids[0..n) (not in @skip, when given):
 * one statement per chunk. @out may be the array @ids points into. */
static int
children_of(struct vmc_catalog *cat, struct cat_ids *src, size_t from,
            size_t to, const struct cat_ids *skip, struct cat_ids *out,
            struct vmc_error *err)
{
    int r = 0;

    while (r == 0 && from < to) {
        size_t k = to - from < CAT_IDS_CHUNK ? to - from : CAT_IDS_CHUNK;
        struct cat_ids kids = { 0 };
        char *sql = cat_ids_sql("SELECT id FROM volumes WHERE parent_id IN ",
                                src->v + from, k, "");
        size_t i;

        r = sql ? ids_select(cat, &kids, sql, NULL, 0, err)
                : vmc_error_set(err, -ENOMEM, "out of memory");
        for (i = 0; r == 0 && i < kids.n; i++) {
            if (!skip || !ids_has(skip, kids.v[i])) {
                r = cat_ids_push(out, kids.v[i]) < 0
                    ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
            }
        }
        cat_ids_release(&kids);
        free(sql);
        from += k;
    }
    return r;
}

int
cat_dependent_ids(struct vmc_catalog *cat, const char *owned_sql,
                  const char *exclude_sql, int64_t arg, struct cat_ids *own,
                  struct cat_ids *deps, struct vmc_error *err)
{
    struct cat_ids excl = { 0 };
    size_t from = 0, levels = 0;
    int r;

    r = ids_select(cat, own, owned_sql, "I", arg, err);
    if (r == 0) {
        r = ids_select(cat, &excl, exclude_sql, "I", arg, err);
    }
    if (r == 0) {
        qsort(excl.v, excl.n, sizeof(*excl.v), cmp_i64);
        r = children_of(cat, own, 0, own->n, &excl, deps, err);
    }
    /* below the first level nothing is left out (as the set's own
     * volumes cannot sit under a dependent) */
    while (r == 0 && from < deps->n) {
        size_t to = deps->n;

        if (++levels > CAT_MAX_LEVELS) {
            r = vmc_error_set(err, -EUCLEAN, "catalog: more than %d levels "
                              "of volumes under one another (a parent_id "
                              "cycle?): run 'vm-clone fsck'",
                              CAT_MAX_LEVELS);
            break;
        }
        r = children_of(cat, deps, from, to, NULL, deps, err);
        from = to;
    }
    cat_ids_release(&excl);
    return r;
}

int
cat_owned_fixed(struct vmc_catalog *cat, const char *owned_sql,
                const char *head, int64_t arg, char **out,
                struct vmc_error *err)
{
    struct cat_ids own = { 0 };
    int r = ids_select(cat, &own, owned_sql, "I", arg, err);

    *out = NULL;
    if (r == 0 && !(*out = cat_ids_sql(head ? head : "SELECT id FROM "
                                       "volumes WHERE ?1 IS NOT NULL AND "
                                       "id IN ", own.v, own.n, ""))) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    cat_ids_release(&own);
    return r;
}

/* ------------------------------------------------------ owner names */

static int
cmp_pair(const void *a, const void *b)
{
    const struct cat_dep *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);

    return c ? c : strcmp(x->name, y->name);
}

void
cat_deps_release(struct cat_dep *d, size_t n)
{
    size_t i;

    for (i = 0; d && i < n; i++) {
        free(d[i].kind);
        free(d[i].name);
    }
    free(d);
}

/* Append the (kind, name) rows of @sql to d[0..*n) (capacity *cap). */
static int
deps_append(struct vmc_catalog *cat, const char *sql, struct cat_dep **d,
            size_t *n, size_t *cap, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = sql ? cat_prepare(cat, &st, err, sql, NULL)
                : vmc_error_set(err, -ENOMEM, "out of memory");

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        if (*n == *cap) {
            size_t nc = *cap ? 2 * *cap : 32;
            struct cat_dep *nd = realloc(*d, nc * sizeof(**d));

            if (!nd) {
                r = vmc_error_set(err, -ENOMEM, "out of memory");
                break;
            }
            *d = nd;
            *cap = nc;
        }
        (*d)[*n].kind = strdup(cat_col(st, 0));
        (*d)[*n].name = strdup(cat_col(st, 1));
        r = (*d)[*n].kind && (*d)[*n].name ? 0
            : vmc_error_set(err, -ENOMEM, "out of memory");
        (*n)++;
    }
    cat_finalize(st);
    return r;
}

int
cat_dependents_named(struct vmc_catalog *cat, const char *owned_sql,
                     const char *exclude_sql, int64_t arg,
                     struct cat_dep **out, size_t *nout,
                     struct vmc_error *err)
{
    struct cat_ids own = { 0 }, deps = { 0 };
    struct cat_dep *d = NULL;
    size_t n = 0, cap = 0, from, i, k;
    int r;

    *out = NULL;
    *nout = 0;
    r = cat_dependent_ids(cat, owned_sql, exclude_sql, arg, &own, &deps,
                          err);
    for (from = 0; r == 0 && from < deps.n; from += k) {
        char *sql;

        k = deps.n - from < CAT_IDS_CHUNK ? deps.n - from : CAT_IDS_CHUNK;
        sql = cat_ids_sql("SELECT kind, coalesce(name, '?') FROM "
                          "volume_owners WHERE id IN ", deps.v + from, k, "");
        r = deps_append(cat, sql, &d, &n, &cap, err);
        free(sql);
    }
    /* the instant clones of a template in the set: they resume its RAM
     * and state files whatever their disks' chain (a flattened one too);
     * by the vms_template index, for the set's few template ids */
    for (from = 0; r == 0 && from < own.n; from += k) {
        char *sql;

        k = own.n - from < CAT_IDS_CHUNK ? own.n - from : CAT_IDS_CHUNK;
        sql = cat_ids_sql("SELECT 'vm', m.name FROM vms m JOIN "
                          "instant_templates i ON i.template_id = "
                          "m.template_id WHERE m.instant = 1 AND "
                          "m.template_id IN (SELECT template_id FROM volumes "
                          "WHERE template_id IS NOT NULL AND id IN ",
                          own.v + from, k, ")");
        r = deps_append(cat, sql, &d, &n, &cap, err);
        free(sql);
    }
    cat_ids_release(&own);
    cat_ids_release(&deps);
    if (r < 0) {
        cat_deps_release(d, n);
        return r;
    }
    /* one entry per owner (a VM of two disks reads the template twice) */
    if (n) {
        qsort(d, n, sizeof(*d), cmp_pair);
    }
    for (i = k = 0; i < n; i++) {
        if (k && !cmp_pair(&d[k - 1], &d[i])) {
            free(d[i].kind);
            free(d[i].name);
        } else {
            d[k++] = d[i];
        }
    }
    *out = d;
    *nout = k;
    return 0;
}
