/*
 * rbd.c - Ceph RBD images through librbd/librados (include/vmclone-rbd.h):
 * the image operations the catalog's rbd pools use (clone, copy, flatten,
 * freeze, rollback, remove, watchers, seal metadata, children), on the
 * connections of rbd-conn.c. The copies between image files and rbd
 * images are in rbd-copy.c. Built only with librbd (rbd-none.c
 * otherwise).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rbd-dl.h"

#include "vmclone-rbd.h"
#include "rbd-internal.h"

bool
vmc_rbd_available(void)
{
    return true;
}

/* Open image @spec (at its snapshot, if it names one; read-only when @ro). */
static int
image_open(const char *spec, bool ro, struct rbd_spec *s, struct rbd_conn *c,
           rbd_image_t *img, struct vmc_error *err)
{
    int r = ro ? rbd_open_spec_ro(spec, s, c, err)
               : rbd_open_spec(spec, s, c, err);

    if (r < 0) {
        return r;
    }
    r = ro ? rbd_open_read_only(c->io, s->image, img,
                                s->snap[0] ? s->snap : NULL)
           : rbd_open(c->io, s->image, img, s->snap[0] ? s->snap : NULL);
    if (r < 0) {
        rbd_conn_close(c);
        return vmc_error_set(err, r, "rbd image '%s': %s", spec,
                             r == -ENOENT ? "no such image" : strerror(-r));
    }
    return 0;
}

/* Open image @spec, run @fn on it, close it: one call's whole life. */
typedef int (*image_fn)(rbd_image_t img, const char *spec,
                        const struct rbd_spec *s, void *ctx,
                        struct vmc_error *err);

static int
with_image(const char *spec, bool ro, image_fn fn, void *ctx,
           struct vmc_error *err)
{
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    int r = image_open(spec, ro, &s, &c, &img, err);

    if (r < 0) {
        return r;
    }
    r = fn(img, spec, &s, ctx, err);
    rbd_close(img);
    rbd_conn_close(&c);
    return r;
}

int
vmc_rbd_pool_check(const char *spec, struct vmc_error *err)
{
    struct rbd_spec s;
    struct rbd_conn c;
    int r = rbd_spec_parse(spec, false, &s, err);

    if (r == 0) {
        r = rbd_conn_open(&c, &s, spec, err);
    }
    if (r == 0) {
        rbd_conn_close(&c);
    }
    return r;
}

/* Options of a new image: format 2; a clone of format 1 (its parent
 * snapshot must be protected: unprotect then refuses while clones use
 * it, the guard a template needs). */
static rbd_image_options_t
new_image_opts(bool clone)
{
    rbd_image_options_t o;

    rbd_image_options_create(&o);
    rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FORMAT, 2);
    if (clone) {
        rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_CLONE_FORMAT, 1);
    }
    return o;
}

int
rbd_image_create(struct rbd_conn *c, const char *name, uint64_t size,
                 const char *spec, struct vmc_error *err)
{
    rbd_image_options_t o = new_image_opts(false);
    int r = rbd_create4(c->io, name, size, o);

    rbd_image_options_destroy(o);
    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': cannot create: %s",
                             spec, r == -EEXIST ? "it already exists"
                                                : strerror(-r));
    }
    return 0;
}

/* ------------------------------------------------------------- clones */

int
vmc_rbd_clone(const char *parent, const char *child, struct vmc_error *err)
{
    struct rbd_spec ps, cs;
    struct rbd_conn pc, cc;
    rbd_image_options_t o;
    int r = rbd_open_spec(parent, &ps, &pc, err);

    if (r < 0) {
        return r;
    }
    r = rbd_open_spec(child, &cs, &cc, err);
    if (r < 0) {
        rbd_conn_close(&pc);
        return r;
    }
    o = new_image_opts(true);
    r = rbd_clone3(pc.io, ps.image, ps.snap[0] ? ps.snap : VMC_RBD_BASE_SNAP,
                   cc.io, cs.image, o);
    rbd_image_options_destroy(o);
    if (r < 0) {
        vmc_error_set(err, r, "rbd clone of '%s%s' as '%s': %s", parent,
                      ps.snap[0] ? "" : "@" VMC_RBD_BASE_SNAP, child,
                      strerror(-r));
    }
    rbd_conn_close(&cc);
    rbd_conn_close(&pc);
    return r;
}

int
vmc_rbd_copy(const char *src, const char *dst, struct vmc_error *err)
{
    struct rbd_spec ss, ds;
    struct rbd_conn sc, dc;
    rbd_image_options_t o;
    rbd_image_t img;
    int r = image_open(src, true, &ss, &sc, &img, err);

    if (r < 0) {
        return r;
    }
    r = rbd_open_spec(dst, &ds, &dc, err);
    if (r == 0) {
        o = new_image_opts(false);
        r = ss.snap[0] ? rbd_copy_by_reads(img, &dc, ds.image, dst, err)
                       : rbd_copy3(img, dc.io, ds.image, o);
        rbd_image_options_destroy(o);
        if (r < 0 && !ss.snap[0]) {
            vmc_error_set(err, r, "rbd copy of '%s' to '%s': %s", src, dst,
                          strerror(-r));
        }
        rbd_conn_close(&dc);
    }
    rbd_close(img);
    rbd_conn_close(&sc);
    return r;
}

static int
flatten_fn(rbd_image_t img, const char *spec, const struct rbd_spec *s,
           void *ctx, struct vmc_error *err)
{
    int r = rbd_flatten(img);

    return r < 0 ? vmc_error_set(err, r, "rbd flatten of '%s': %s", spec,
                                 strerror(-r)) : 0;
}

int
vmc_rbd_flatten(const char *spec, struct vmc_error *err)
{
    return with_image(spec, false, flatten_fn, NULL, err);
}

int
rbd_freeze_open(rbd_image_t img, const char *snap, const char *spec,
                struct vmc_error *err)
{
    bool exists = false;
    int prot = 0, r = rbd_snap_exists(img, snap, &exists);

    if (r == 0 && !exists) {
        r = rbd_snap_create(img, snap);
    }
    if (r == 0) {
        r = rbd_snap_is_protected(img, snap, &prot);
    }
    if (r == 0 && !prot) {
        r = rbd_snap_protect(img, snap);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': cannot freeze as "
                             "snapshot '%s': %s", spec, snap, strerror(-r));
    }
    return 0;
}

int
vmc_rbd_freeze(const char *spec, struct vmc_error *err)
{
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    int r = rbd_open_spec(spec, &s, &c, err);

    if (r < 0) {
        return r;
    }
    r = rbd_open(c.io, s.image, &img, NULL);
    if (r < 0) {
        vmc_error_set(err, r, "rbd image '%s': %s", spec,
                      r == -ENOENT ? "no such image" : strerror(-r));
    } else {
        r = rbd_freeze_open(img, s.snap[0] ? s.snap : VMC_RBD_BASE_SNAP,
                            spec, err);
        rbd_close(img);
    }
    rbd_conn_close(&c);
    return r;
}

/* Roll open image @img (@spec) back to snapshot @snap: refused while
 * another client has it open (its watcher: a running VM, a server) or
 * holds its exclusive lock, which we take first and keep until close so
 * that nobody writes during the rollback. */
static int
rollback_open(rbd_image_t img, const char *snap, const char *spec,
              struct vmc_error *err)
{
    rbd_image_watcher_t w[64];
    size_t n = 64;
    bool exists = false;
    int r = rbd_watchers_list(img, w, &n);

    if (r == 0) {
        rbd_watchers_list_cleanup(w, n);
    }
    if ((r == 0 || r == -ERANGE) && n > 1) {
        return vmc_error_set(err, -EBUSY, "rbd image '%s' is in use: %zu "
                             "other client(s) have it open (stop the VM "
                             "first)", spec, n - 1);
    }
    if (r == 0) {
        r = rbd_snap_exists(img, snap, &exists);
    }
    if (r == 0 && !exists) {
        return vmc_error_set(err, -ENOENT, "rbd image '%s' has no snapshot "
                             "'%s'", spec, snap);
    }
    if (r == 0) {
        r = rbd_lock_acquire(img, RBD_LOCK_MODE_EXCLUSIVE);
        r = r == -EINVAL || r == -EOPNOTSUPP ? 0 : r;   /* no such feature */
    }
    if (r == -EROFS) {
        return vmc_error_set(err, -EBUSY, "rbd image '%s': cannot take its "
                             "exclusive lock: another client holds it",
                             spec);
    }
    if (r == 0) {
        r = rbd_snap_rollback(img, snap);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': cannot roll back to "
                             "snapshot '%s': %s", spec, snap, strerror(-r));
    }
    return 0;
}

int
vmc_rbd_rollback(const char *spec, struct vmc_error *err)
{
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    int r = rbd_open_spec(spec, &s, &c, err);

    if (r < 0) {
        return r;
    }
    if (!s.snap[0]) {
        rbd_conn_close(&c);
        return vmc_error_set(err, -EINVAL, "rbd '%s': no snapshot named "
                             "(IMAGE@SNAP)", spec);
    }
    r = rbd_open(c.io, s.image, &img, NULL);    /* the head, read-write */
    if (r < 0) {
        vmc_error_set(err, r, "rbd image '%s': %s", spec,
                      r == -ENOENT ? "no such image" : strerror(-r));
    } else {
        r = rollback_open(img, s.snap, spec, err);
        rbd_close(img);
    }
    rbd_conn_close(&c);
    return r;
}

static int
parent_fn(rbd_image_t img, const char *spec, const struct rbd_spec *s,
          void *ctx, struct vmc_error *err)
{
    char **out = ctx;
    rbd_linked_image_spec_t pi;
    rbd_snap_spec_t ps;
    int r = rbd_get_parent(img, &pi, &ps);

    if (r == -ENOENT) {
        return 0;
    }
    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': cannot read its "
                             "parent: %s", spec, strerror(-r));
    }
    if (asprintf(out, "rbd:%s%s%s%s%s%s%s/%s%s%s", pi.pool_name,
                 pi.pool_namespace[0] ? "/" : "", pi.pool_namespace,
                 s->id[0] ? ":id=" : "", s->id, s->conf[0] ? ":conf=" : "",
                 s->conf, pi.image_name,
                 strcmp(ps.name, VMC_RBD_BASE_SNAP) ? "@" : "",
                 strcmp(ps.name, VMC_RBD_BASE_SNAP) ? ps.name : "") < 0) {
        *out = NULL;
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    rbd_linked_image_spec_cleanup(&pi);
    rbd_snap_spec_cleanup(&ps);
    return r;
}

int
vmc_rbd_parent(const char *spec, char **out, struct vmc_error *err)
{
    *out = NULL;
    return with_image(spec, true, parent_fn, out, err);
}

/* ------------------------------------------------------------- remove */

static int
watchers_fn(rbd_image_t img, const char *spec, const struct rbd_spec *s,
            void *ctx, struct vmc_error *err)
{
    rbd_image_watcher_t w[64];
    unsigned *count = ctx;
    size_t n = 64;
    int r = rbd_watchers_list(img, w, &n);

    if (r == -ERANGE) {
        *count = (unsigned)n;   /* more than we asked for */
        return 0;
    }
    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': cannot list "
                             "watchers: %s", spec, strerror(-r));
    }
    *count = (unsigned)n;
    rbd_watchers_list_cleanup(w, n);
    return 0;
}

int
vmc_rbd_watchers(const char *spec, unsigned *count, struct vmc_error *err)
{
    *count = 0;
    /* read-only: our own open registers no watch */
    return with_image(spec, true, watchers_fn, count, err);
}

/* Unprotect and remove snapshot @snap of open image @img; absent: 0. */
static int
remove_snap(rbd_image_t img, const char *snap, const char *spec,
            struct vmc_error *err)
{
    int prot = 0, r = rbd_snap_is_protected(img, snap, &prot);

    if (r == 0 && prot) {
        r = rbd_snap_unprotect(img, snap);
    }
    if (r == 0) {
        r = rbd_snap_remove(img, snap);
    }
    if (r == -ENOENT) {
        return 0;
    }
    if (r < 0) {
        vmc_error_set(err, r, "rbd image '%s': snapshot '%s': %s", spec,
                      snap, r == -EBUSY ? "clones still depend on it"
                                        : strerror(-r));
    }
    return r;
}

/* Unprotect and remove every snapshot of open image @img. */
static int
remove_snaps(rbd_image_t img, const char *spec, struct vmc_error *err)
{
    rbd_snap_info_t snaps[64];
    int max = 64, n, i, r = 0;

    n = rbd_snap_list(img, snaps, &max);
    if (n < 0) {
        return vmc_error_set(err, n, "rbd image '%s': cannot list "
                             "snapshots: %s", spec, strerror(-n));
    }
    for (i = 0; r == 0 && i < n; i++) {
        r = remove_snap(img, snaps[i].name, spec, err);
    }
    rbd_snap_list_end(snaps);
    return r;
}

int
vmc_rbd_remove(const char *spec, struct vmc_error *err)
{
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    int r = rbd_open_spec(spec, &s, &c, err);

    if (r < 0) {
        return r;
    }
    r = rbd_open(c.io, s.image, &img, NULL);
    if (r == -ENOENT) {
        rbd_conn_close(&c);
        return 0;
    }
    if (r == 0) {
        r = s.snap[0] ? remove_snap(img, s.snap, spec, err)
                      : remove_snaps(img, spec, err);
        rbd_close(img);
        if (s.snap[0]) {
            rbd_conn_close(&c);
            return r;
        }
    } else {
        vmc_error_set(err, r, "rbd image '%s': %s", spec, strerror(-r));
    }
    if (r == 0) {
        r = rbd_remove(c.io, s.image);
        if (r == -ENOENT) {
            r = 0;
        } else if (r < 0) {
            vmc_error_set(err, r, "rbd image '%s': cannot remove: %s", spec,
                          r == -EBUSY ? "a client has it open"
                                      : strerror(-r));
        }
    }
    rbd_conn_close(&c);
    return r;
}

/* ----------------------------------------------------- seal, children */

static int
seal_fn(rbd_image_t img, const char *spec, const struct rbd_spec *s,
        void *ctx, struct vmc_error *err)
{
    char buf[512], **out = ctx;
    size_t len = sizeof(buf);
    int r = rbd_metadata_get(img, VMC_RBD_SEAL_KEY, buf, &len);

    if (r == -ENOENT) {
        return vmc_error_set(err, r, "rbd image '%s' has no seal", spec);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': cannot read its seal: "
                             "%s", spec, strerror(-r));
    }
    *out = strndup(buf, len);
    return *out ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");
}

int
vmc_rbd_seal_get(const char *spec, char **out, struct vmc_error *err)
{
    *out = NULL;
    return with_image(spec, true, seal_fn, out, err);
}

/* The clones of open image @img (at its base snapshot) into @names. */
static int
list_children(rbd_image_t img, char ***names, size_t *count)
{
    rbd_linked_image_spec_t *kids = NULL;
    size_t n = 0, i;
    int r;

    while ((r = rbd_list_children3(img, kids, &n)) == -ERANGE) {
        free(kids);
        if (!(kids = calloc(n ? n : 1, sizeof(*kids)))) {
            return -ENOMEM;
        }
    }
    if (r == 0 && n && !(*names = calloc(n, sizeof(**names)))) {
        r = -ENOMEM;
    }
    for (i = 0; r == 0 && i < n; i++) {
        if (asprintf(&(*names)[i], "%s/%s%s%s", kids[i].pool_name,
                     kids[i].pool_namespace, kids[i].pool_namespace[0]
                     ? "/" : "", kids[i].image_name) < 0) {
            r = -ENOMEM;
            break;
        }
        *count = i + 1;
    }
    if (kids && n) {
        rbd_linked_image_spec_list_cleanup(kids, n);
    }
    free(kids);
    return r;
}

int
vmc_rbd_children(const char *spec, char ***names, size_t *count,
                 struct vmc_error *err)
{
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    size_t i;
    int r = rbd_open_spec_ro(spec, &s, &c, err);

    *names = NULL;
    *count = 0;
    if (r < 0) {
        return r;
    }
    r = rbd_open_read_only(c.io, s.image, &img,
                           s.snap[0] ? s.snap : VMC_RBD_BASE_SNAP);
    if (r == 0) {
        r = list_children(img, names, count);
        rbd_close(img);
    }
    rbd_conn_close(&c);
    if (r < 0) {
        for (i = 0; i < *count; i++) {
            free((*names)[i]);
        }
        free(*names);
        *names = NULL;
        *count = 0;
        vmc_error_set(err, r, "rbd image '%s@%s': cannot list its clones: "
                      "%s", spec, VMC_RBD_BASE_SNAP, strerror(-r));
    }
    return r;
}
