/*
 * template-copy.c - a template's base copies in a primary pool: made on
 * first use (cat_ensure_copy, for linked clones and relink) or ahead of it
 * (vm-clone template copy NAME --pool P, issue 13 point 9), as CloudStack
 * copies a template to primary storage once.
 *
 * Hot templates (issue 11, docs/design/scale-out.md): a pool may hold
 * several base copies of one template, numbered copy_no 0, 1, ..., each
 * its own files (on rbd: its own image, snapshot vmclone-base). A pool's
 * max_clones_per_base caps the children of one copy (the direct children
 * of its first disk's volume: what `rbd children` lists on rbd); NULL
 * means the default of its type (cat_pool_max_clones()). The first copy
 * is made from the template, the next ones from the lowest-numbered
 * ready copy in the pool (source_copy_id): a server-side copy on rbd,
 * and a host other than the template's (whose secondary pool may be
 * local to it) can make one.
 *
 * Choosing (cat_ensure_copy), in one transaction: among the ready copies
 * with room for the caller's group, the one with the fewest children
 * (then the lowest number). None with room: wait for a copy being made
 * or removed, if any, and look again; else make number (highest seen +
 * 1). UNIQUE (template_id, pool_id, copy_no) and INSERT ... ON CONFLICT
 * DO NOTHING make that a compare-and-set on what this call saw: of many
 * callers that found every copy full, one inserts the row and copies; the
 * others get no row back, wait on its journal lock and use the new copy.
 * The maker holds its journal lock while copying; a waiter whose maker
 * died rolls the copy back (cat_journal_wait) and looks again.
 *
 * The room a chooser saw may be gone when its clone commits: the clone
 * re-counts under a lock on the copy row (cat_copy_has_room(), called by
 * clone.c inside the transaction that inserts its rows; FOR UPDATE on
 * PostgreSQL, BEGIN IMMEDIATE on SQLite) and starts again when full. In
 * a pool without a limit nothing is counted and no row lock is taken:
 * clones of one copy stay as parallel as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-ops.h"
#include "engine.h"
#include "vmclone-catalog-admin.h"
#include "vmclone-seal.h"

/* Template @name, ready and not retired: its id. */
static int
copyable_template(struct vmc_catalog *cat, const char *name, int64_t *tid,
                  struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT id, state, retired FROM "
                        "templates WHERE name = ?", "s", name);

    if (r == 0 && (r = cat_step(cat, st, err)) == 0) {
        r = vmc_error_set(err, -ENOENT, "no template named '%s'", name);
    } else if (r > 0 && strcmp(cat_col(st, 1), "ready")) {
        r = vmc_error_set(err, -EBUSY, "template '%s' is being %s", name,
                          !strcmp(cat_col(st, 1), "creating") ? "created"
                                                              : "removed");
    } else if (r > 0 && cat_col_int(st, 2)) {
        r = vmc_error_set(err, -EINVAL, "template '%s' is retired: no new "
                          "copies", name);
    } else if (r > 0) {
        *tid = cat_col_i64(st, 0);
        r = 0;
    }
    cat_finalize(st);
    return r;
}

int
vmc_catalog_template_copy(struct vmc_catalog *cat, const char *name,
                          const char *pool,
                          struct vmc_template_copy_result *res,
                          struct vmc_error *err)
{
    int64_t tid = 0, pool_id = 0, copy_id = 0, home = 0;
    char *pool_path = NULL;
    int r;

    memset(res, 0, sizeof(*res));
    r = copyable_template(cat, name, &tid, err);
    if (r == 0) {
        r = cat_template_home(cat, tid, &home, err);
    }
    if (r == 0 && !pool && home) {
        pool_id = home;     /* as clone: a frozen template's own pool */
    } else if (r == 0) {
        r = cat_pool_lookup(cat, pool, "primary", &pool_id, &pool_path, err);
    }
    free(pool_path);
    res->in_place = r == 0 && home == pool_id;
    if (r == 0 && !res->in_place) {
        r = cat_ensure_copy(cat, tid, pool_id, 1, &copy_id, &res->copied,
                            &res->mechanism, &res->bytes, err);
    }
    if (r == 0) {
        r = cat_get_str(cat, &res->pool, err, "SELECT name FROM pools WHERE "
                        "id = ?", "I", pool_id);
    }
    return r;
}

/* ------------------------------------------------------ make a copy */

/* Copy @src's seal sidecar next to @dst (temporary name, sync, rename). */
static int
copy_sidecar(const char *src, const char *dst, struct vmc_error *err)
{
    char *s = NULL, *d = NULL, *t = NULL, buf[65536];
    int in = -1, out = -1, r = 0;
    ssize_t n;

    if (asprintf(&s, "%s.seal", src) < 0 || asprintf(&d, "%s.seal", dst) < 0 ||
        asprintf(&t, "%s.seal.tmp", dst) < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    in = open(s, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        r = errno == ENOENT ? 0 : vmc_error_set(err, -errno, "'%s': %s", s,
                                                strerror(errno));
        goto out;
    }
    out = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (out < 0) {
        r = vmc_error_set(err, -errno, "'%s': %s", t, strerror(errno));
        goto out;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            r = vmc_error_set(err, -EIO, "cannot write '%s'", t);
            goto out;
        }
    }
    if (n < 0 || fsync(out) < 0) {
        r = vmc_error_set(err, -errno, "'%s': %s", t, strerror(errno));
        goto out;
    }
    r = engine_rename(t, d, true);
    if (r < 0) {
        vmc_error_set(err, r, "cannot rename '%s' to '%s': %s", t, d,
                      strerror(-r));
        goto out;
    }
    cat_fsync_dir_of(d);
out:
    if (in >= 0) {
        close(in);
    }
    if (out >= 0) {
        close(out);
    }
    if (r < 0 && t) {
        unlink(t);
    }
    free(s);
    free(d);
    free(t);
    return r;
}

/* Seal @dst, the flattened copy of volume @vid: its root must be
 * @vid's (the same guest view). */
static int
seal_flattened(const char *dst, int64_t vid, struct vmc_catalog *cat,
               struct vmc_error *err)
{
    struct vmc_open_opts so = { .format = VMC_FMT_QCOW2 };
    struct vmc_seal_info si = { 0 };
    char *want = NULL;
    int r = cat_get_str(cat, &want, err, "SELECT coalesce(seal, '') FROM "
                        "volumes WHERE id = ?", "I", vid);

    if (r == 0) {
        r = vmc_image_seal(dst, 0, 2, &so, &si, err);
    }
    if (r == 0 && *want && strcmp(want, si.root_hex)) {
        r = vmc_error_set(err, -EIO, "the copy '%s' reads differently from "
                          "its template's layer (seal %.16s... against "
                          "%.16s...)", dst, si.root_hex, want);
    }
    free(want);
    return r;
}

/* What the chooser saw: the copy to use, else one to wait for (its
 * journal row), else the number of the copy to make and the copy to make
 * it from (0: the template). */
struct copy_pick {
    int64_t use, wait_jid, next_no, src;
};

/* Make base copy number @pk->next_no of template @tid in pool @pool_id,
 * in the caller's transaction: -EAGAIN when another call made that number
 * first (the compare-and-set: one winner per number). The first copy is
 * made from the template; the next ones from copy @pk->src in the same
 * pool (a server-side copy on rbd, a reflink on a directory that has
 * them; and any host can make it: the template's files may be local to
 * another host). */
static int
make_copy(struct vmc_catalog *cat, int64_t tid, int64_t pool_id,
          const struct copy_pick *pk, int64_t *copy_id,
          const char **mechanism, uint64_t *bytes, struct vmc_error *err)
{
    struct cat_disks src = { 0 };
    int64_t *vids = NULL, cid = 0;
    char *tname = NULL;
    const char *mech = "reflink";
    struct cat_progress prog;
    struct cat_op op;
    int r;
    size_t i;

    cat_op_init(&op, cat, "copy");
    r = cat_get_str(cat, &tname, err, "SELECT name FROM templates WHERE "
                    "id = ?", "I", tid);
    if (r == 0) {
        r = pk->src ? cat_disks_of(cat, &src, CAT_DISKS_COPY, pk->src, err)
                    : cat_disks_of(cat, &src, CAT_DISKS_TEMPLATE, tid, err);
    }
    if (r == 0 && !(vids = calloc(src.n ? src.n : 1, sizeof(*vids)))) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r < 0) {
        cat_rollback(cat);      /* the caller's transaction */
        goto out;
    }
    /* in the caller's transaction: the rows */
    r = cat_op_begin(&op, tname, err);
    if (r == 0) {
        /* one winner per number, also without a single writer lock */
        r = cat_get_i64(cat, &cid, err, "INSERT INTO template_copies("
                        "template_id, pool_id, copy_no, source_copy_id, "
                        "state, journal_id, created) VALUES (?, ?, ?, "
                        "nullif(?, 0), ?, ?, ?) ON CONFLICT (template_id, "
                        "pool_id, copy_no) DO NOTHING RETURNING id",
                        "IIIIsId", tid, pool_id, pk->next_no, pk->src,
                        CAT_CREATING, op.jid, cat_now());
        if (r == -ENOENT) {
            r = vmc_error_set(err, -EAGAIN, "another operation is making "
                              "this template copy");
        }
    }
    for (i = 0; r == 0 && pk->src && i < src.n; i++) {
        int64_t n = 0;

        /* FOR SHARE: the copy we read is not removed under us */
        r = cat_get_i64(cat, &n, err, "SELECT id FROM volumes WHERE id = ? "
                        "AND state = 'ready' FOR SHARE", "I", src.d[i].vid);
        if (r == -ENOENT) {
            r = vmc_error_set(err, -EAGAIN, "the template copy to copy "
                              "from is being removed");
        }
    }
    for (i = 0; r == 0 && i < src.n; i++) {
        char label[96];

        snprintf(label, sizeof(label), "copy-%s", tname);
        r = cat_volume_insert(cat, pool_id, label, src.d[i].disk,
                              src.d[i].virtual_size, 0, "copy_id", cid, 0,
                              op.jid, &vids[i], err);
    }
    r = cat_op_stage(&op, r, err);
    if (r < 0) {
        goto out;
    }
    /* the files: full clone (reflink, copy_file_range or copy), then the
     * seal sidecar, read-only */
    cat_progress_init(&prog, cat, NULL, NULL, src.n);
    for (i = 0; r == 0 && i < src.n; i++) {
        struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                    .flags = VMC_OPEN_FORCE_SHARE };
        struct vmc_full_clone_opts fo;
        struct vmc_full_clone_result fr = { 0 };
        struct vmc_image *img = NULL;
        char *dst = NULL;

        r = cat_volume_path(cat, vids[i], &dst, err);
        if (r == 0 && cat_path_is_rbd(dst)) {
            r = cat_rbd_copy_volume(cat, src.d[i].vid, src.d[i].path, dst,
                                    bytes, err);
            mech = pk->src ? "rbd-copy" : "rbd-import";
            free(dst);
            continue;
        }
        if (r == 0) {
            r = vmc_image_open(&img, src.d[i].path, &oo, err);
        }
        if (r == 0) {
            vmc_full_clone_opts_init(&fo);
            fo.progress = cat_progress_fn(&prog);
            fo.opaque = &prog;
            r = vmc_clone_full(img, dst, &fo, &fr, err);
            if (r == 0) {
                cat_progress_next(&prog);
            }
        }
        vmc_image_close(img);
        if (r == 0) {
            mech = vmc_clone_method_name(fr.method);
            *bytes += fr.bytes_copied;
            cat_crashpoint("copy.before-seal");
            /* a frozen template's layer was flattened: sealed anew,
             * the same guest view giving the same root */
            r = src.d[i].parent ? seal_flattened(dst, src.d[i].vid, cat,
                                                 err)
                                : copy_sidecar(src.d[i].path, dst, err);
        }
        if (r == 0 && (r = cat_mode_new_readonly(dst)) < 0) {
            vmc_error_set(err, r, "chmod '%s': %s", dst, strerror(-r));
        }
        free(dst);
    }
    cat_crashpoint("copy.before-commit");
    if (r == 0) {
        r = cat_op_publish(&op, err);
    }
    if (r == 0) {
        r = cat_op_cas(&op, (int)src.n, "the template copy's volumes", err,
                       "UPDATE volumes SET state = ?3, seal = (SELECT t.seal "
                       "FROM volumes t WHERE t.template_id = ?1 AND t.disk = "
                       "volumes.disk) WHERE journal_id = ?2 AND state = ?4",
                       "IIss", tid, op.jid, CAT_READY, CAT_CREATING);
    }
    if (r == 0) {
        r = cat_op_cas(&op, 1, "the template copy", err,
                       "UPDATE template_copies SET state = ?, mechanism = ? "
                       "WHERE id = ? AND state = ?", "ssIs", CAT_READY, mech,
                       cid, CAT_CREATING);
    }
    if (r == 0) {
        r = cat_op_ready(&op, err);
    }
    if (r < 0) {
        cat_op_fail(&op);
    }
    if (r == 0) {
        *copy_id = cid;
        *mechanism = mech;
    }
out:
    cat_op_end(&op);
    free(vids);
    free(tname);
    cat_disks_release(&src);
    return r;
}

/* ------------------------------------------------------ choose a copy */

int
cat_pool_max_clones(struct vmc_catalog *cat, int64_t pool_id, int64_t *max,
                    struct vmc_error *err)
{
    /* none for directories (a qcow2 file has no limit on the overlays
     * that name it); 200 on rbd (scale-out.md: every clone updates the
     * base image's header object, ceph-csi starts flattening at 250
     * children of one image, OpenShift alerts above 200, fsck lists
     * children at ~9 ms each) */
    return cat_get_i64(cat, max, err, "SELECT " CAT_POOL_MAX_CLONES_SQL("p")
                       " FROM pools p WHERE p.id = ?", "I", pool_id);
}

/* The children of copy c.id (c: the outer query's template_copies) */
#define COPY_CHILDREN_SQL \
    "(SELECT count(*) FROM volumes x WHERE x.parent_id = (SELECT b.id " \
    "FROM volumes b WHERE b.copy_id = c.id ORDER BY b.disk LIMIT 1))"

/* Room for @need more children on a copy with @children (@max 0: no
 * limit; a group larger than the limit goes to an unused copy). */
static bool
has_room(int64_t children, int64_t need, int64_t max)
{
    return max <= 0 || children == 0 || children + need <= max;
}

int
cat_copy_has_room(struct vmc_catalog *cat, int64_t copy_id, int64_t need,
                  bool *room, struct vmc_error *err)
{
    int64_t max = 0, n = 0;
    int r;

    *room = false;
    r = cat_get_i64(cat, &max, err, "SELECT " CAT_POOL_MAX_CLONES_SQL("p")
                    " FROM pools p JOIN template_copies c ON c.pool_id = "
                    "p.id WHERE c.id = ?", "I", copy_id);
    if (r == 0) {
        /* with a limit, FOR UPDATE: clones of one copy count one after
         * another; without one, clones stay parallel */
        r = cat_get_i64(cat, &n, err, max > 0
                        ? "SELECT id FROM template_copies WHERE id = ? AND "
                          "state = 'ready' FOR UPDATE"
                        : "SELECT id FROM template_copies WHERE id = ? AND "
                          "state = 'ready'", "I", copy_id);
    }
    if (r == -ENOENT) {
        return vmc_error_set(err, -EAGAIN, "the template copy was removed "
                             "meanwhile; try again");
    }
    if (r == 0 && max > 0) {
        r = cat_get_i64(cat, &n, err, "SELECT " COPY_CHILDREN_SQL " FROM "
                        "template_copies c WHERE c.id = ?", "I", copy_id);
    } else {
        n = 0;
    }
    if (r == 0) {
        *room = has_room(n, need, max);
    }
    return r;
}

/* In the caller's transaction: the template's copies in the pool. */
static int
pick_copy(struct vmc_catalog *cat, int64_t tid, int64_t pool_id,
          int64_t need, struct copy_pick *pk, struct vmc_error *err)
{
    int64_t max = 0, best_children = 0;
    cat_stmt *st = NULL;
    int r;

    memset(pk, 0, sizeof(*pk));
    r = cat_pool_max_clones(cat, pool_id, &max, err);
    if (r == 0) {
        r = cat_prepare(cat, &st, err, "SELECT c.id, c.state, coalesce("
                        "c.journal_id, 0), c.copy_no, " COPY_CHILDREN_SQL
                        " FROM template_copies c WHERE c.template_id = ? AND "
                        "c.pool_id = ? ORDER BY c.copy_no", "II", tid,
                        pool_id);
    }
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        int64_t id = cat_col_i64(st, 0), no = cat_col_i64(st, 3);
        int64_t children = cat_col_i64(st, 4);

        r = 0;
        if (no + 1 > pk->next_no) {
            pk->next_no = no + 1;
        }
        if (strcmp(cat_col(st, 1), "ready")) {
            if (!pk->wait_jid) {
                pk->wait_jid = cat_col_i64(st, 2);
            }
            continue;
        }
        if (!pk->src) {
            pk->src = id;       /* the lowest-numbered ready copy */
        }
        if (has_room(children, need, max) &&
                   (!pk->use || children < best_children)) {
            pk->use = id;
            best_children = children;
        }
    }
    cat_finalize(st);
    return r;
}

int
cat_ensure_copy(struct vmc_catalog *cat, int64_t tid, int64_t pool_id,
                int64_t need, int64_t *copy_id, bool *copied,
                const char **mechanism, uint64_t *bytes,
                struct vmc_error *err)
{
    int64_t home = 0;
    unsigned tries;
    int r;

    *copied = false;
    r = cat_template_home(cat, tid, &home, err);
    if (r < 0) {
        return r;
    }
    if (home == pool_id) {
        return vmc_error_set(err, -EINVAL, "the template lives in that "
                             "pool (it was frozen there): its clones there "
                             "use it in place, without a copy");
    }
    for (tries = 0; tries < 50; tries++) {
        struct copy_pick pk;

        r = cat_begin(cat, err);
        if (r < 0) {
            return r;
        }
        r = pick_copy(cat, tid, pool_id, need, &pk, err);
        if (r < 0 || pk.use) {
            cat_rollback(cat);
            *copy_id = pk.use;
            return r;
        }
        if (!pk.wait_jid) {
            /* every copy full (or none): ours to make; make_copy commits
             * the rows */
            r = make_copy(cat, tid, pool_id, &pk, copy_id, mechanism, bytes,
                          err);
            if (r == -EAGAIN) {
                continue;       /* another made that number first */
            }
            if (r == 0) {
                *copied = true;
            }
            return r;
        }
        /* being made (or deleted) by someone else: wait for them */
        cat_rollback(cat);
        r = cat_journal_wait(cat, pk.wait_jid, err);
        if (r < 0) {
            return r;
        }
    }
    return vmc_error_set(err, -EBUSY, "no template copy with room became "
                         "ready");
}

/* ------------------------------------------------------ pool setting */

int
vmc_catalog_pool_set_max_clones(struct vmc_catalog *cat, const char *name,
                                int64_t max, struct vmc_error *err)
{
    int r;

    if (max < -1) {
        return vmc_error_set(err, -EINVAL, "max clones per base must be 0 "
                             "(no limit) or more");
    }
    r = cat_exec(cat, err, "UPDATE pools SET max_clones_per_base = "
                 "nullif(?, -1) WHERE name = ? AND kind = 'primary'", "Is",
                 max, name);
    if (r == 0 && cat_changes(cat) == 0) {
        int64_t id = 0;

        r = cat_get_i64(cat, &id, err, "SELECT id FROM pools WHERE name = ?",
                        "s", name);
        r = r == -ENOENT
            ? vmc_error_set(err, -ENOENT, "no pool named '%s'", name)
            : r < 0 ? r
                    : vmc_error_set(err, -EINVAL, "pool '%s' is a secondary "
                                    "pool: template copies and clones live "
                                    "in primary pools", name);
    }
    return r;
}

int
vmc_catalog_pool_max_clones(struct vmc_catalog *cat, const char *name,
                            int64_t *max, struct vmc_error *err)
{
    int64_t id = 0;
    int r = cat_get_i64(cat, &id, err, "SELECT id FROM pools WHERE name = ?",
                        "s", name);

    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no pool named '%s'", name);
    }
    return r < 0 ? r : cat_pool_max_clones(cat, id, max, err);
}
