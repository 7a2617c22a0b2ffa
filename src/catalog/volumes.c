/*
 * volumes.c - volume rows and their files as the operations use them:
 * the disks of an object, a new volume row, pool lookup, backing names
 * and chain depth. Below the journal and every operation.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-internal.h"
#include "catalog-ops.h"

int
cat_disks_load(struct vmc_catalog *cat, struct cat_disks *out,
               const char *sql, int64_t id, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    r = cat_prepare(cat, &st, err, sql, "I", id);
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        struct cat_disk *n = realloc(out->d, (out->n + 1) * sizeof(*n));

        if (!n) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        out->d = n;
        n = &out->d[out->n];
        n->vid = cat_col_i64(st, 0);
        n->parent = cat_col_i64(st, 1);
        n->disk = cat_col_int(st, 2);
        n->virtual_size = (uint64_t)cat_col_i64(st, 3);
        n->path = strdup(cat_col(st, 4));
        out->n++;
        if (!n->path) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        r = 0;
    }
    cat_finalize(st);
    if (r < 0) {
        cat_disks_release(out);
    }
    return r;
}

void
cat_disks_release(struct cat_disks *d)
{
    size_t i;

    for (i = 0; d->d && i < d->n; i++) {
        free(d->d[i].path);
    }
    free(d->d);
    memset(d, 0, sizeof(*d));
}

/* A file (or its seal) already at new volume @vid's name is not ours:
 * refuse before anything is staged, so no roll back can remove it. */
static int
refuse_foreign_file(struct vmc_catalog *cat, int64_t vid,
                    struct vmc_error *err)
{
    char *path = NULL, *seal = NULL;
    struct stat st;
    int r = cat_volume_path(cat, vid, &path, err);

    if (r == 0 && asprintf(&seal, "%s.seal", path) < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0 && (lstat(path, &st) == 0 || lstat(seal, &st) == 0)) {
        r = vmc_error_set(err, -EEXIST, "'%s' already exists and is not in "
                          "the catalog (left in place)",
                          lstat(path, &st) == 0 ? path : seal);
    }
    free(seal);
    free(path);
    return r;
}

int
cat_volume_insert(struct vmc_catalog *cat, int64_t pool_id, const char *label,
                  int disk, uint64_t vsize, int64_t parent,
                  const char *owner_col, int64_t owner, int top, int64_t jid,
                  int64_t *vid, struct vmc_error *err)
{
    char *sql = NULL, *file = NULL;
    int r;

    if (asprintf(&sql, "INSERT INTO volumes(pool_id, file, format, "
                 "virtual_size, disk, parent_id, state, %s, top, journal_id, "
                 "created) VALUES (?, 'new-' || ? || '-' || ? || '-' || ?, "
                 "'qcow2', ?, ?, nullif(?, 0), 'creating', ?, ?, ?, ?)",
                 owner_col) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_exec(cat, err, sql, "IIsiIiIIiId", pool_id, jid, label, disk,
                 (int64_t)vsize, disk, parent, owner, top, jid, cat_now());
    free(sql);
    if (r < 0) {
        return r;
    }
    *vid = cat_last_id(cat);
    /* the store id keeps two stores sharing a directory apart; older
     * rows keep their names (the name is stored, never derived) */
    if (asprintf(&file, "%s-disk%d-%s%s%" PRId64 ".qcow2", label, disk,
                 cat->store_id, cat->store_id[0] ? "-" : "", *vid) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_exec(cat, err, "UPDATE volumes SET file = ? WHERE id = ?", "sI",
                 file, *vid);
    free(file);
    if (r == 0) {
        /* rbd pools (pool-rbd.c): an image, raw to QEMU, without suffix */
        r = cat_exec(cat, err, "UPDATE volumes SET format = 'raw', file = "
                     "substr(file, 1, length(file) - 6) WHERE id = ? AND "
                     "pool_id IN (SELECT id FROM pools WHERE type = 'rbd')",
                     "I", *vid);
    }
    if (r == 0) {
        r = refuse_foreign_file(cat, *vid, err);
    }
    return r;
}

int
cat_pool_lookup(struct vmc_catalog *cat, const char *name, const char *kind,
                int64_t *id, char **path_out, struct vmc_error *err)
{
    char *def = NULL, *k = NULL;
    int r;

    if (!name && !strcmp(kind, "primary")) {
        vmc_catalog_config_get(cat, "default-pool", &def, NULL);
        name = def;
    }
    if (!name) {
        name = kind;
    }
    r = cat_get_i64(cat, id, err, "SELECT id FROM pools WHERE name = ?", "s",
                    name);
    if (r == -ENOENT) {
        r = vmc_error_set(err, r, "no pool named '%s'", name);
    }
    if (r == 0) {
        r = cat_get_str(cat, &k, err, "SELECT kind FROM pools WHERE id = ?",
                        "I", *id);
    }
    if (r == 0 && strcmp(k, kind)) {
        r = vmc_error_set(err, -EINVAL, "pool '%s' is a %s pool, not a %s "
                          "pool", name, k, kind);
    }
    if (r == 0 && path_out) {
        r = cat_get_str(cat, path_out, err, "SELECT path FROM pools WHERE "
                        "id = ?", "I", *id);
    }
    free(k);
    free(def);
    return r;
}

int
cat_backing_name(const char *base, const char *path, char **out,
                 struct vmc_error *err)
{
    return vmc_clone_backing_name(base, path, false, out, err);
}

unsigned
cat_max_depth(struct vmc_catalog *cat)
{
    char *v = NULL;
    unsigned d = 16;

    if (vmc_catalog_config_get(cat, "max-chain-depth", &v, NULL) == 0 && v) {
        d = (unsigned)strtoul(v, NULL, 10);
    }
    free(v);
    return d ? d : 16;
}

int
cat_volume_depth(struct vmc_catalog *cat, int64_t vid, unsigned *depth,
                 struct vmc_error *err)
{
    int64_t n = 0;
    int r = cat_get_i64(cat, &n, err, "WITH RECURSIVE c(id) AS (SELECT "
                        "parent_id FROM volumes WHERE id = ? UNION ALL "
                        "SELECT v.parent_id FROM volumes v JOIN c ON v.id = "
                        "c.id WHERE v.parent_id IS NOT NULL) SELECT count(*) "
                        "FROM c WHERE id IS NOT NULL", "I", vid);

    *depth = (unsigned)n;
    return r;
}

/* Ready volumes of each owner kind, ordered by disk. */
static const char *const disks_of_sql[] = {
    [CAT_DISKS_TEMPLATE] = "v.template_id = ?",
    [CAT_DISKS_COPY] = "v.copy_id = ?",
    [CAT_DISKS_SNAPSHOT] = "v.snapshot_id = ?",
    [CAT_DISKS_VM_TOP] = "v.vm_id = ? AND v.top = 1",
};

int
cat_disks_of(struct vmc_catalog *cat, struct cat_disks *out,
             enum cat_disks_owner owner, int64_t id, struct vmc_error *err)
{
    char *sql = NULL;
    int r;

    if (asprintf(&sql, "SELECT o.id, coalesce(o.parent_id, 0), o.disk, "
                 "o.virtual_size, o.path FROM volume_owners o JOIN volumes "
                 "v ON v.id = o.id WHERE %s AND v.state = 'ready' ORDER BY "
                 "v.disk", disks_of_sql[owner]) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_disks_load(cat, out, sql, id, err);
    free(sql);
    return r;
}

/* Make overlays @paths[i] of @bases[i] (one linked clone each). */
int
cat_overlays(const struct cat_disks *bases, char **paths, struct vmc_error *err)
{
    size_t i;
    int r = 0;

    for (i = 0; r == 0 && i < bases->n; i++) {
        struct vmc_clone_opts co;
        const char *one[1] = { paths[i] };

        vmc_clone_opts_init(&co);
        co.base_format = VMC_FMT_QCOW2;
        co.create.size = bases->d[i].virtual_size;
        r = vmc_clone_linked(bases->d[i].path, one, 1, &co, err);
    }
    return r;
}
