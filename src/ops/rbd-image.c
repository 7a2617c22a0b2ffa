/*
 * rbd-image.c - an rbd image as an image of the engine
 * (vmc_rbd_image_open(), include/vmclone-rbd.h): librbd's read, write,
 * write-zeroes, discard and flush behind struct engine_ext_ops, so that
 * the NBD server (and anything else on struct vmc_image) serves it as it
 * serves a raw file. Built only with librbd (rbd-image-none.c otherwise).
 *
 * Safety, as for files (whose OFD locks refuse a writer while anyone
 * reads consistently, and make the file "in use"):
 *  - the image is refused while another client has it open (an RBD
 *    watcher: a running VM, another server);
 *  - it is opened read-write, also for a read-only export, so that it
 *    has our watcher: rm, flatten and the like see it in use;
 *  - the exclusive lock is taken explicitly and kept until close: other
 *    clients cannot write meanwhile (librbd refuses their lock requests);
 *  - a template's image (is_template()) is only opened read-only.
 *
 * Block status comes from rbd_diff_iterate2 with the parent included (a
 * clone's data from its parent is data of the whole image, as a backing
 * file's data is for a qcow2 overlay), at byte granularity, cached per
 * window of objects: the first question about a window lists its data
 * extents (the objects that exist by the object map, then the byte
 * extents inside those); our own writes then mark what they touch as data (never
 * wrong: "data" only means "read it"), and nobody else can write while
 * we hold the exclusive lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbd-dl.h"

#include "vmclone-rbd.h"
#include "engine.h"
#include "rbd-internal.h"

/* Objects per block-status window. */
#define WINDOW_OBJECTS 64

struct extent {
    uint64_t off, len;
};

struct rbd_img {
    struct rbd_spec spec;
    struct rbd_conn conn;
    rbd_image_t img;
    bool have_img;
    uint64_t size;
    uint64_t window;            /* bytes per block-status window */
    /* data extents of [win_off, win_end), sorted, disjoint */
    uint64_t win_off, win_end;  /* win_end 0: nothing cached */
    struct extent *ext;
    size_t n, cap;
};

/* ---------------------------------------------------------- data path */

static int
ri_read(void *priv, void *buf, uint64_t off, size_t len)
{
    struct rbd_img *s = priv;
    ssize_t n = rbd_read(s->img, off, len, buf);

    if (n < 0) {
        return (int)n;
    }
    return (size_t)n == len ? 0 : -EIO;
}

static int extent_add(struct rbd_img *s, uint64_t off, uint64_t len);

/* Our own writes: what they touched holds data now (see the top). */
static void
mark_data(struct rbd_img *s, uint64_t off, uint64_t len)
{
    uint64_t a = off > s->win_off ? off : s->win_off;
    uint64_t b = off + len < s->win_end ? off + len : s->win_end;

    if (s->win_end && a < b && extent_add(s, a, b - a) < 0) {
        s->win_end = 0;         /* out of memory: ask librbd again */
    }
}

static int
ri_write(void *priv, const void *buf, uint64_t off, size_t len)
{
    struct rbd_img *s = priv;
    ssize_t n = rbd_write(s->img, off, len, buf);

    if (n < 0) {
        return (int)n;
    }
    mark_data(s, off, len);
    return (size_t)n == len ? 0 : -EIO;
}

static int
ri_write_zeroes(void *priv, uint64_t off, uint64_t len, bool may_unmap)
{
    struct rbd_img *s = priv;
    /* without unmap, the range keeps (zeroed) storage: thick */
    ssize_t n = rbd_write_zeroes(s->img, off, len,
                                 may_unmap ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION,
                                 0);

    mark_data(s, off, len);
    return n < 0 ? (int)n : 0;
}

static int
ri_discard(void *priv, uint64_t off, uint64_t len)
{
    struct rbd_img *s = priv;
    int n = rbd_discard(s->img, off, len);

    mark_data(s, off, len);
    return n < 0 ? n : 0;
}

static int
ri_flush(void *priv)
{
    return rbd_flush(((struct rbd_img *)priv)->img);
}

/* ------------------------------------------------------- block status */

/* Index of the first extent of @v (@n, sorted) ending at or after @off. */
static size_t
extent_find(const struct extent *v, size_t n, uint64_t off)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (v[mid].off + v[mid].len < off) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Add [off, off+len) to the window's extents, keeping them sorted,
 * disjoint and merged (appending in order, as rbd_diff_iterate2 reports,
 * costs no move). */
static int
extent_add(struct rbd_img *s, uint64_t off, uint64_t len)
{
    uint64_t end = off + len;
    size_t i = extent_find(s->ext, s->n, off), j;

    for (j = i; j < s->n && s->ext[j].off <= end; j++) {
        uint64_t e = s->ext[j].off + s->ext[j].len;

        off = s->ext[j].off < off ? s->ext[j].off : off;
        end = e > end ? e : end;
    }
    if (j > i) {                /* merged with extents i..j-1 */
        s->ext[i].off = off;
        s->ext[i].len = end - off;
        memmove(&s->ext[i + 1], &s->ext[j], (s->n - j) * sizeof(*s->ext));
        s->n -= j - i - 1;
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct extent *e = realloc(s->ext, cap * sizeof(*e));

        if (!e) {
            return -ENOMEM;
        }
        s->ext = e;
        s->cap = cap;
    }
    memmove(&s->ext[i + 1], &s->ext[i], (s->n - i) * sizeof(*s->ext));
    s->ext[i].off = off;
    s->ext[i].len = len;
    s->n++;
    return 0;
}

static int
diff_cb(uint64_t off, size_t len, int exists, void *arg)
{
    return exists && len ? extent_add(arg, off, len) : 0;
}

/* The objects holding data in [start, end): whole objects, which the
 * object map answers without reading them (fast-diff). */
struct coarse {
    struct extent *v;
    size_t n, cap;
};

static int
coarse_cb(uint64_t off, size_t len, int exists, void *arg)
{
    struct coarse *c = arg;

    if (!exists || !len) {
        return 0;
    }
    if (c->n && c->v[c->n - 1].off + c->v[c->n - 1].len == off) {
        c->v[c->n - 1].len += len;
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct extent *e = realloc(c->v, cap * sizeof(*e));

        if (!e) {
            return -ENOMEM;
        }
        c->v = e;
        c->cap = cap;
    }
    c->v[c->n].off = off;
    c->v[c->n++].len = len;
    return 0;
}

/* List the data extents of the window holding @off: the objects that
 * exist (whole objects), then the byte extents inside them. The parent's
 * data counts (include_parent). */
static int
fill_window(struct rbd_img *s, uint64_t off)
{
    uint64_t start = off - off % s->window;
    uint64_t end = s->size - start < s->window ? s->size : start + s->window;
    struct coarse c = { 0 };
    size_t i;
    int r;

    s->n = 0;
    s->win_end = 0;
    r = rbd_diff_iterate2(s->img, NULL, start, end - start, 1, 1, coarse_cb,
                          &c);
    for (i = 0; r >= 0 && i < c.n; i++) {
        r = rbd_diff_iterate2(s->img, NULL, c.v[i].off, c.v[i].len, 1, 0,
                              diff_cb, s);
    }
    free(c.v);
    if (r < 0) {
        return r;
    }
    s->win_off = start;
    s->win_end = end;
    return 0;
}

static int
ri_block_status(void *priv, uint64_t off, uint64_t len, bool *data,
                uint64_t *run)
{
    struct rbd_img *s = priv;
    uint64_t end;
    size_t i;
    int r;

    if (!s->win_end || off < s->win_off || off >= s->win_end) {
        r = fill_window(s, off);
        if (r < 0) {
            return r;
        }
    }
    end = off + len < s->win_end ? off + len : s->win_end;
    /* the first extent ending after @off */
    i = extent_find(s->ext, s->n, off);
    if (i < s->n && s->ext[i].off + s->ext[i].len == off) {
        i++;
    }
    *data = i < s->n && s->ext[i].off <= off;
    if (*data) {
        end = s->ext[i].off + s->ext[i].len < end
              ? s->ext[i].off + s->ext[i].len : end;
    } else if (i < s->n && s->ext[i].off < end) {
        end = s->ext[i].off;
    }
    *run = end - off;
    return 0;
}

/* ------------------------------------------------------------- open */

static void
ri_close(void *priv)
{
    struct rbd_img *s = priv;

    if (s->have_img) {
        rbd_close(s->img);      /* releases the exclusive lock */
    }
    rbd_conn_close(&s->conn);
    free(s->ext);
    free(s);
}

static const struct engine_ext_ops rbd_image_ops = {
    .read = ri_read,
    .write = ri_write,
    .write_zeroes = ri_write_zeroes,
    .discard = ri_discard,
    .flush = ri_flush,
    .block_status = ri_block_status,
    .close = ri_close,
};

/* How many clients other than us (@self: our open is one of them) watch
 * the image. */
static int
other_watchers(struct rbd_img *s, bool self, unsigned *count)
{
    rbd_image_watcher_t w[64];
    size_t n = 64;
    int r = rbd_watchers_list(s->img, w, &n);

    if (r == -ERANGE) {
        *count = (unsigned)n;
        return 0;
    }
    if (r < 0) {
        return r;
    }
    rbd_watchers_list_cleanup(w, n);
    *count = (unsigned)(self && n ? n - 1 : n);
    return 0;
}

/*
 * A template image (a template's copy in the pool): sealed (metadata
 * VMC_RBD_SEAL_KEY), frozen as VMC_RBD_BASE_SNAP, and no clone itself.
 * (rbd_clone3 copies the parent's metadata, so its clones have the key
 * too, but also a parent; a VM flattened since has no VMC_RBD_BASE_SNAP
 * unless clones were made of it.)
 */
static bool
is_template(struct rbd_img *s)
{
    char buf[512];
    size_t blen = sizeof(buf);
    bool frozen = false;
    rbd_linked_image_spec_t pi;
    rbd_snap_spec_t ps;
    int r = rbd_metadata_get(s->img, VMC_RBD_SEAL_KEY, buf, &blen);

    if (r < 0 && r != -ERANGE) {
        return false;
    }
    if (rbd_snap_exists(s->img, VMC_RBD_BASE_SNAP, &frozen) < 0 || !frozen) {
        return false;
    }
    r = rbd_get_parent(s->img, &pi, &ps);
    if (r == 0) {
        rbd_linked_image_spec_cleanup(&pi);
        rbd_snap_spec_cleanup(&ps);
    }
    return r == -ENOENT;
}

/* The checks of the top (in use, sealed template), then the lock. */
static int
claim(struct rbd_img *s, const char *spec, bool writable, bool self,
      struct vmc_error *err)
{
    unsigned others = 0;
    int r = other_watchers(s, self, &others);

    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': cannot list its "
                             "watchers: %s", spec, strerror(-r));
    }
    if (others) {
        return vmc_error_set(err, -EBUSY, "rbd image '%s' is in use: %u "
                             "other client(s) have it open (a running VM, "
                             "another server)", spec, others);
    }
    if (writable && is_template(s)) {
        return vmc_error_set(err, -EPERM, "rbd image '%s' is a sealed "
                             "template: it can only be opened read-only",
                             spec);
    }
    if (!self) {
        return 0;               /* opened read-only: no lock to take */
    }
    r = rbd_lock_acquire(s->img, RBD_LOCK_MODE_EXCLUSIVE);
    if (r == -EINVAL || r == -EOPNOTSUPP) {
        return 0;               /* no exclusive-lock feature */
    }
    if (r < 0) {
        return vmc_error_set(err, r == -EROFS ? -EBUSY : r, "rbd image "
                             "'%s': cannot take its exclusive lock: %s",
                             spec, r == -EROFS ? "another client holds it"
                                               : strerror(-r));
    }
    return 0;
}

/* Open the image read-write (our watcher); a read-only user without the
 * rights for that gets a read-only open. *@self: we watch it. */
static int
open_image(struct rbd_img *s, const char *spec, bool writable, bool *self,
           struct vmc_error *err)
{
    int r = rbd_open(s->conn.io, s->spec.image, &s->img, NULL);

    *self = r == 0;
    if (r < 0 && !writable && r != -ENOENT) {
        r = rbd_open_read_only(s->conn.io, s->spec.image, &s->img, NULL);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "rbd image '%s': %s", spec,
                             r == -ENOENT ? "no such image" : strerror(-r));
    }
    s->have_img = true;
    return 0;
}

int
vmc_rbd_image_open(struct vmc_image **out, const char *spec, unsigned flags,
                   struct vmc_error *err)
{
    bool writable = (flags & VMC_OPEN_RDWR) != 0, self = false;
    struct rbd_img *s = calloc(1, sizeof(*s));
    rbd_image_info_t info;
    int r;

    *out = NULL;
    if (!s) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = rbd_open_spec(spec, &s->spec, &s->conn, err);
    if (r == 0) {
        r = open_image(s, spec, writable, &self, err);
    }
    if (r == 0) {
        r = claim(s, spec, writable, self, err);
    }
    if (r == 0) {
        r = rbd_stat(s->img, &info, sizeof(info));
        if (r < 0) {
            vmc_error_set(err, r, "rbd image '%s': %s", spec, strerror(-r));
        }
    }
    if (r < 0) {
        ri_close(s);
        return r;
    }
    s->size = info.size;
    s->window = info.obj_size * WINDOW_OBJECTS;
    if (s->window == 0) {
        s->window = 64ull << 20;
    }
    return engine_image_ext_new(out, spec, info.size, info.obj_size,
                                writable, &rbd_image_ops, s, err);
}
