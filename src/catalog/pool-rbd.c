/*
 * pool-rbd.c - the pool backend seam: what differs when a pool is a Ceph
 * RBD pool (type 'rbd') instead of a directory. An rbd pool's path is its
 * spec (include/vmclone-rbd.h), so a volume's path (pool path '/' file)
 * is its image's spec, and the operations ask cat_path_is_rbd() where
 * they would touch a file: template copies are imported and frozen,
 * linked clones are RBD clones, full clones rbd_copy3 (or an export into
 * a directory pool), deletion rbd_remove (journal.c's roll back and roll
 * forward unlink through cat_unlink_volume_file(), which comes here), VM
 * snapshots RBD snapshots (the snapshot's volume is IMAGE@SNAP; clones
 * of it are RBD clones of that snapshot).
 * Operations with no RBD equivalent are refused (cat_rbd_refuse()).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-ops.h"
#include "vmclone-rbd.h"

/* VM snapshot NAME of an rbd VM is its image's RBD snapshot PREFIX+NAME
 * (never VMC_RBD_BASE_SNAP, whatever NAME is). */
#define VMC_RBD_SNAP_PREFIX "vmclone-snap-"

bool
cat_path_is_rbd(const char *path)
{
    return vmc_rbd_is_spec(path);
}

int
vmc_catalog_pool_add_rbd(struct vmc_catalog *cat, const char *name,
                         const char *kind,
                         const struct vmc_rbd_pool_opts *o,
                         struct vmc_error *err)
{
    char *spec = NULL;
    int r = cat_check_name("pool", name, err);

    if (r == 0 && strcmp(kind, "primary") && strcmp(kind, "secondary")) {
        r = vmc_error_set(err, -EINVAL, "pool kind must be 'primary' or "
                          "'secondary', not '%s'", kind);
    }
    if (r == 0 && (!o->rbd_pool || !o->rbd_pool[0])) {
        r = vmc_error_set(err, -EINVAL, "an rbd pool needs --rbd-pool");
    }
    if (r == 0) {
        r = vmc_rbd_pool_spec(o->rbd_pool, o->ns, o->conf, o->id, &spec,
                              err);
    }
    if (r == 0) {
        r = vmc_rbd_pool_check(spec, err);
    }
    if (r == 0) {
        r = cat_begin(cat, err);
    }
    if (r == 0) {
        r = cat_exec(cat, err, "INSERT INTO pools(name, kind, path, type, "
                     "rbd_pool, rbd_namespace, rbd_conf, rbd_id, created) "
                     "VALUES (?, ?, ?, 'rbd', ?, ?, ?, ?, ?)", "sssssssd",
                     name, kind, spec, o->rbd_pool, o->ns, o->conf, o->id,
                     cat_now());
        if (r == -EEXIST) {
            r = vmc_error_set(err, r, "a pool named '%s' or at '%s' already "
                              "exists", name, spec);
        }
        r = r == 0 ? cat_commit(cat, err) : (cat_rollback(cat), r);
    }
    free(spec);
    return r;
}

int
cat_rbd_refuse(const char *path, const char *what, struct vmc_error *err)
{
    if (!cat_path_is_rbd(path)) {
        return 0;
    }
    return vmc_error_set(err, -ENOTSUP, "%s is not supported on rbd pools "
                         "('%s')", what, path);
}

void
cat_rbd_prefetch_pool(struct vmc_catalog *cat, int64_t pool_id)
{
    char *path = NULL;

    /* a failure here is the real call's to report */
    if (cat_get_str(cat, &path, NULL, "SELECT path FROM pools WHERE id = ? "
                    "AND type = 'rbd'", "I", pool_id) == 0) {
        vmc_rbd_prefetch(path, false);  /* rbd_clone3 and the like */
    }
    free(path);
}

int
cat_rbd_flatten(const char *path, struct vmc_error *err)
{
    return vmc_rbd_flatten(path, err);
}

int
cat_rbd_unlink(const char *path, struct vmc_error *err)
{
    return vmc_rbd_remove(path, err);
}

int
cat_rbd_copy_volume(struct vmc_catalog *cat, int64_t src_vid,
                    const char *src, const char *dst, uint64_t *bytes,
                    struct vmc_error *err)
{
    char *seal = NULL;
    int r;

    if (cat_path_is_rbd(src)) {
        /* a template stored in rbd already: a copy, frozen the same way */
        r = vmc_rbd_copy(src, dst, err);
        return r < 0 ? r : vmc_rbd_freeze(dst, err);
    }
    r = cat_get_str(cat, &seal, err, "SELECT coalesce(seal, '') FROM "
                    "volumes WHERE id = ?", "I", src_vid);
    if (r == 0) {
        r = vmc_rbd_import(src, dst, seal[0] ? seal : NULL, bytes, err);
    }
    free(seal);
    return r;
}

/* One disk of a clone group (cat_rbd_clone_group()). */
static int
clone_disk(const char *base, const char *dst, bool linked, uint64_t *bytes,
           struct vmc_error *err)
{
    if (linked && !cat_path_is_rbd(base)) {
        return vmc_error_set(err, -ENOTSUP, "a linked clone in an rbd pool "
                             "needs its base in rbd too, not '%s'", base);
    }
    if (linked) {
        return vmc_rbd_clone(base, dst, err);
    }
    if (cat_path_is_rbd(base) && cat_path_is_rbd(dst)) {
        return vmc_rbd_copy(base, dst, err);
    }
    if (cat_path_is_rbd(base)) {
        return vmc_rbd_export(base, dst, bytes, err);
    }
    return vmc_rbd_import(base, dst, NULL, bytes, err);
}

int
cat_rbd_clone_group(const struct cat_disks *base, char *const *paths,
                    size_t count, bool linked, uint64_t *bytes,
                    struct vmc_error *err)
{
    size_t i;
    int r = 0;

    for (i = 0; r == 0 && i < count * base->n; i++) {
        r = clone_disk(base->d[i % base->n].path, paths[i], linked, bytes,
                       err);
    }
    return r;
}

int
cat_rbd_backing_volume(struct vmc_catalog *cat, const char *path,
                       int64_t *vid, char **backing, struct vmc_error *err)
{
    char *parent = NULL;
    int r = vmc_rbd_parent(path, &parent, err);

    *vid = 0;
    if (r == 0 && parent) {
        r = cat_get_i64(cat, vid, err, "SELECT v.id FROM volumes v JOIN "
                        "pools p ON p.id = v.pool_id WHERE p.path || '/' || "
                        "v.file = ?", "s", parent);
        if (r == -ENOENT) {
            r = vmc_error_set(err, r, "'%s': parent image '%s' is not in "
                              "the catalog", path, parent);
        }
    }
    if (backing) {
        *backing = parent;
    } else {
        free(parent);
    }
    return r;
}

int
cat_rbd_refuse_vm(struct vmc_catalog *cat, const char *vm, const char *what,
                  struct vmc_error *err)
{
    char *type = NULL;
    int r = cat_get_str(cat, &type, NULL, "SELECT p.type FROM vms m JOIN "
                        "pools p ON p.id = m.pool_id WHERE m.name = ?", "s",
                        vm);

    r = r == 0 && !strcmp(type, "rbd")
        ? vmc_error_set(err, -ENOTSUP, "%s is not supported on rbd pools "
                        "(VM '%s' is in one)", what, vm)
        : 0;
    free(type);
    return r;
}

bool
cat_rbd_vm(struct vmc_catalog *cat, const char *vm, bool connect)
{
    char *path = NULL;
    bool rbd = cat_get_str(cat, &path, NULL, "SELECT p.path FROM vms m "
                           "JOIN pools p ON p.id = m.pool_id WHERE m.name = "
                           "? AND p.type = 'rbd'", "s", vm) == 0 && path;

    if (rbd && connect) {
        vmc_rbd_prefetch(path, true);
        vmc_rbd_prefetch(path, false);
    }
    free(path);
    return rbd;
}

int
cat_rbd_snapshot_volume(struct vmc_catalog *cat, int64_t vid, int64_t top,
                        const char *name, struct vmc_error *err)
{
    return cat_exec(cat, err, "UPDATE volumes SET file = (SELECT t.file || "
                    "'@" VMC_RBD_SNAP_PREFIX "' || ? FROM volumes t WHERE "
                    "t.id = ?), parent_id = (SELECT t.parent_id FROM volumes "
                    "t WHERE t.id = ?) WHERE id = ?", "sIII", name, top, top,
                    vid);
}

int
cat_rbd_snapshot_take(const char *path, struct vmc_error *err)
{
    return vmc_rbd_freeze(path, err);
}

int
cat_rbd_snapshot_rollback(const char *path, struct vmc_error *err)
{
    return vmc_rbd_rollback(path, err);
}

bool
cat_rbd_missing(const char *path)
{
    char *parent = NULL;
    int r = vmc_rbd_parent(path, &parent, NULL);

    free(parent);
    return r == -ENOENT;
}

bool
cat_rbd_verify_seal(const char *path, const char *want, char *detail,
                    size_t len)
{
    struct vmc_error e = { 0 };
    char *seal = NULL;
    int r = vmc_rbd_seal_get(path, &seal, &e);
    bool ok = r == 0 && (!want || !strcmp(seal, want));

    /* the data clones read, through librbd, against the seal */
    if (ok && (r = vmc_rbd_verify(path, want, &e)) < 0) {
        ok = false;
    }
    if (r < 0) {
        snprintf(detail, len, "seal verification failed: %s", e.msg);
    } else if (!ok) {
        snprintf(detail, len, "seal verification failed: the image's seal "
                 "(%.16s...) is not the one the catalog recorded (%.16s...)",
                 seal, want);
    }
    free(seal);
    return ok;
}

int
cat_rbd_refuse_watched(const char *vm, const char *path,
                       struct vmc_error *err)
{
    unsigned n = 0;
    int r;

    if (!cat_path_is_rbd(path)) {
        return 0;
    }
    r = vmc_rbd_watchers(path, &n, err);
    if (r == -ENOENT) {
        return 0;       /* gone already: nothing uses it */
    }
    if (r == 0 && n) {
        r = vmc_error_set(err, -EBUSY, "VM '%s' is in use: %u client(s) "
                          "have its rbd image '%s' open (stop it first)", vm,
                          n, path);
    }
    return r;
}

/* ------------------------------------------------------ fsck, children */

/* The catalog's clones of volume @vid as "POOL/[NS/]IMAGE" (rbd
 * children's form), with @ready[i] whether clone i is ready. */
static int
catalog_children(struct vmc_catalog *cat, int64_t vid, char ***names,
                 bool **ready, size_t *n, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT p.rbd_pool || '/' || CASE "
                        "WHEN coalesce(p.rbd_namespace, '') = '' THEN '' "
                        "ELSE p.rbd_namespace || '/' END || k.file, "
                        "k.state FROM volumes k JOIN pools p ON p.id = "
                        "k.pool_id WHERE k.parent_id = ? AND p.type = 'rbd' "
                        "AND k.file NOT LIKE '%@%'", "I", vid);

    *n = 0;
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        char **a = realloc(*names, (*n + 1) * sizeof(**names));
        bool *b = a ? realloc(*ready, (*n + 1) * sizeof(**ready)) : NULL;

        if (a) {
            *names = a;
        }
        if (b) {
            *ready = b;
        }
        if (!a || !b || !(a[*n] = strdup(cat_col(st, 0)))) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        b[(*n)++] = !strcmp(cat_col(st, 1), "ready");
        r = 0;
    }
    cat_finalize(st);
    return r;
}

static bool
listed(char **names, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!strcmp(names[i], name)) {
            return true;
        }
    }
    return false;
}

static void
free_names(char **names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

/* One base: its rbd children against the catalog's clones of it. */
static void
fsck_base(struct vmc_catalog *cat, const struct cat_disk *b,
          vmc_catalog_report_fn fn, void *opaque, unsigned *problems)
{
    struct vmc_error e = { 0 };
    char **kids = NULL, **cat_kids = NULL, msg[600];
    bool *ready = NULL;
    size_t nk = 0, nc = 0, i;
    int r = catalog_children(cat, b->vid, &cat_kids, &ready, &nc, &e);

    if (r == 0) {
        r = vmc_rbd_children(b->path, &kids, &nk, &e);
    }
    if (r == -ENOENT && nc == 0) {
        r = 0;          /* a VM's disk that nothing is cloned from */
    }
    if (r < 0) {
        cat_report(fn, opaque, "problem", b->path, e.msg);
        (*problems)++;
    }
    for (i = 0; r == 0 && i < nk; i++) {
        if (!listed(cat_kids, nc, kids[i])) {
            snprintf(msg, sizeof(msg), "rbd image '%s' is a clone of it "
                     "that the catalog does not know (left in place: "
                     "'rbd rm' it once nothing uses it)", kids[i]);
            cat_report(fn, opaque, "problem", b->path, msg);
            (*problems)++;
        }
    }
    for (i = 0; r == 0 && i < nc; i++) {
        if (ready[i] && !listed(kids, nk, cat_kids[i])) {
            snprintf(msg, sizeof(msg), "the catalog's clone '%s' is not "
                     "among its rbd children", cat_kids[i]);
            cat_report(fn, opaque, "problem", b->path, msg);
            (*problems)++;
        }
    }
    free_names(kids, nk);
    free_names(cat_kids, nc);
    free(ready);
}

int
cat_rbd_fsck_children(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                      void *opaque, unsigned *problems,
                      struct vmc_error *err)
{
    struct cat_disks bases = { 0 };
    size_t i;
    /* what clones are made from: template copies, VM snapshots, and
     * whatever the catalog says has clones */
    int r = cat_disks_load(cat, &bases, "SELECT v.id, coalesce(v.parent_id, "
                           "0), v.disk, v.virtual_size, p.path || '/' || "
                           "v.file FROM volumes v JOIN pools p ON p.id = "
                           "v.pool_id WHERE p.type = 'rbd' AND v.state = "
                           "'ready' AND v.id > ? AND (v.copy_id IS NOT NULL "
                           "OR v.snapshot_id IS NOT NULL OR v.id IN (SELECT "
                           "k.parent_id FROM volumes k WHERE k.parent_id IS "
                           "NOT NULL)) ORDER BY v.id", 0, err);

    for (i = 0; r == 0 && i < bases.n; i++) {
        fsck_base(cat, &bases.d[i], fn, opaque, problems);
    }
    cat_disks_release(&bases);
    return r;
}
