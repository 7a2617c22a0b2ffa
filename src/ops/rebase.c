/*
 * rebase.c - change the backing file of an image (qemu-img rebase).
 *
 * Safe mode keeps the guest view unchanged: wherever the image does not
 * define a range itself and the old chain differs from the new one, the
 * old content is copied into the image, one cluster-aligned piece at a
 * time so that only differing clusters are allocated. The header is
 * rewritten last, after a flush: a crash before that leaves the old
 * backing in place with extra (identical) data in the image.
 *
 * Ranges are compared only where the two chains can differ: the block
 * status of both chains skips runs that read as zeros in both, and runs
 * that both serve from the same bytes of the same file (a rebase onto a
 * layer of the old chain, or onto a copy sharing its files).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops-internal.h"
#include "view-io.h"

struct rebase {
    struct vmc_image *img;
    struct vmc_image *old;      /* borrowed: the current backing */
    struct vmc_image *new;      /* opened here; NULL for no backing */
    struct vmc_error *err;
    uint64_t cluster;
    uint8_t *buf_old;
    uint8_t *buf_new;
    struct ops_progress progress;
};

/* Status of @layer's guest view at @off (at most @n bytes): zeros past
 * its end or without a layer. */
static int
chain_status(struct vmc_image *layer, uint64_t off, uint64_t n,
             struct vmc_block_status *bs)
{
    int r;

    if (!layer || off >= vmc_image_size(layer)) {
        memset(bs, 0, sizeof(*bs));
        bs->length = n;
        bs->flags = VMC_BS_ZERO;
        return 0;
    }
    n = ops_min(n, vmc_image_size(layer) - off);
    r = vmc_image_block_status(layer, off, n, true, bs);
    if (r == 0 && (bs->length == 0 || bs->length > n)) {
        r = -EIO;
    }
    return r;
}

static bool
reads_zero(const struct vmc_block_status *bs)
{
    return !(bs->flags & VMC_BS_ALLOCATED) || (bs->flags & VMC_BS_ZERO);
}

/* Do both runs read the same bytes of the same file? */
static bool
same_source(const struct vmc_block_status *a,
            const struct vmc_block_status *b)
{
    const unsigned need = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_OFFSET;

    if ((a->flags & need) != need || (b->flags & need) != need ||
        ((a->flags | b->flags) & (VMC_BS_COMPRESSED | VMC_BS_ZERO)) ||
        !a->layer || !b->layer || a->host_offset != b->host_offset) {
        return false;
    }
    return engine_layers_same_file(a->layer, b->layer);
}

static int compare_and_copy(struct rebase *c, uint64_t off, uint64_t n);

/* [off, off+n) is not defined by the image: copy what would change. */
static int
fix_range(struct rebase *c, uint64_t off, uint64_t n)
{
    struct vmc_block_status bo, bn;
    uint64_t run;
    int r;

    while (n > 0) {
        r = chain_status(c->old, off, n, &bo);
        if (r == 0) {
            r = chain_status(c->new, off, n, &bn);
        }
        if (r < 0) {
            return vmc_error_set(c->err, r, "error while reading the "
                                 "metadata of the backing chains at offset "
                                 "%llu: %s", (unsigned long long)off,
                                 strerror(-r));
        }
        run = ops_min(bo.length, bn.length);
        if (!(reads_zero(&bo) && reads_zero(&bn)) && !same_source(&bo, &bn)) {
            r = compare_and_copy(c, off, run);
            if (r < 0) {
                return r;
            }
        }
        off += run;
        n -= run;
    }
    return 0;
}

/* Read [off, off+n) from both chains; copy the old content of every
 * cluster-aligned piece that differs. */
static int
compare_and_copy(struct rebase *c, uint64_t off, uint64_t n)
{
    uint64_t pos, piece;
    int r;

    r = ops_read_view(c->old, c->buf_old, off, n,
                          "from old backing file ", c->err);
    if (r == 0) {
        r = ops_read_view(c->new, c->buf_new, off, n,
                              "from new backing file ", c->err);
    }
    if (r < 0) {
        return r;
    }
    for (pos = 0; pos < n; pos += piece) {
        piece = ops_min(n - pos,
                        ops_align_down(off + pos, c->cluster) + c->cluster -
                        (off + pos));
        if (memcmp(c->buf_old + pos, c->buf_new + pos, piece)) {
            r = ops_write_view(c->img, c->buf_old + pos, off + pos, piece,
                               "to ", c->err);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

static int
copy_differences(struct rebase *c)
{
    uint64_t size = vmc_image_size(c->img);
    struct vmc_block_status bs;
    uint64_t off = 0;
    int r;

    while (off < size) {
        uint64_t n = ops_min(size - off, OPS_BUF_SIZE -
                             (off & (OPS_BUF_SIZE - 1)));

        r = vmc_image_block_status(c->img, off, n, false, &bs);
        if (r == 0 && (bs.length == 0 || bs.length > n)) {
            r = -EIO;
        }
        if (r < 0) {
            return vmc_error_set(c->err, r, "error while reading the "
                                 "metadata of '%s' at offset %llu: %s",
                                 vmc_image_filename(c->img),
                                 (unsigned long long)off, strerror(-r));
        }
        n = bs.length;
        if (!(bs.flags & VMC_BS_ALLOCATED)) {
            r = fix_range(c, off, n);
            if (r < 0) {
                return r;
            }
        }
        off += n;
        ops_progress_add(&c->progress, n);
    }
    return 0;
}

/* Refuse a new backing chain that contains the image itself. */
static int
check_loop(struct rebase *c, const char *name)
{
    const struct vmc_image *layer;
    struct stat me, st;

    if (stat(vmc_image_filename(c->img), &me) < 0) {
        return 0;
    }
    for (layer = c->new; layer; layer = vmc_image_backing(layer)) {
        if (stat(vmc_image_filename(layer), &st) == 0 &&
            st.st_dev == me.st_dev && st.st_ino == me.st_ino) {
            return vmc_error_set(c->err, -ELOOP, "backing file '%s' would "
                                 "create a loop with '%s'", name,
                                 vmc_image_filename(c->img));
        }
    }
    return 0;
}

static int
open_new_backing(struct rebase *c, const char *name, const char *fmt,
                 const struct vmc_rebase_opts *o)
{
    struct vmc_open_opts oo = { 0 };
    char *path = NULL;
    int r;

    if (o->backing_open) {
        oo = *o->backing_open;
        oo.flags &= VMC_OPEN_FORCE_SHARE;
    }
    oo.format = vmc_format_from_name(fmt);
    r = vmc_backing_path_resolve(vmc_image_filename(c->img), name, &path);
    if (r < 0) {
        return vmc_error_set(c->err, r, "out of memory");
    }
    r = vmc_image_open(&c->new, path, &oo, c->err);
    free(path);
    if (r < 0) {
        vmc_error_prepend(c->err, "could not open new backing file '%s'",
                          name);
        return r;
    }
    return check_loop(c, name);
}

static int
rebase_safe(struct rebase *c, const char *name, const char *fmt,
            const struct vmc_rebase_opts *o)
{
    int r;

    if (!vmc_image_is_writable(c->img)) {
        return vmc_error_set(c->err, -EROFS, "'%s' is opened read-only",
                             vmc_image_filename(c->img));
    }
    if (name) {
        r = open_new_backing(c, name, fmt, o);
        if (r < 0) {
            return r;
        }
    }
    c->cluster = vmc_image_cluster_size(c->img);
    if (!ops_is_power_of_2(c->cluster) || c->cluster > OPS_BUF_SIZE) {
        c->cluster = OPS_BUF_SIZE;
    }
    c->buf_old = malloc(OPS_BUF_SIZE);
    c->buf_new = malloc(OPS_BUF_SIZE);
    if (!c->buf_old || !c->buf_new) {
        return vmc_error_set(c->err, -ENOMEM, "out of memory");
    }
    ops_progress_init(&c->progress, o->progress, o->opaque,
                      vmc_image_size(c->img));
    r = copy_differences(c);
    if (r < 0) {
        return r;
    }
    r = vmc_image_flush(c->img);
    if (r < 0) {
        return vmc_error_set(c->err, r, "cannot flush '%s': %s",
                             vmc_image_filename(c->img), strerror(-r));
    }
    r = vmc_image_set_backing(c->img, name, fmt, c->err);
    if (r == 0) {
        ops_progress_finish(&c->progress);
    }
    return r;
}

int
vmc_rebase(struct vmc_image *img, const char *backing,
           const char *backing_fmt, const struct vmc_rebase_opts *o,
           struct vmc_error *err)
{
    static const struct vmc_rebase_opts defaults;
    struct rebase c = { .img = img, .err = err };
    struct vmc_image_info info;
    const char *name = backing && *backing ? backing : NULL;
    int r;

    if (!o) {
        o = &defaults;
    }
    if (name && vmc_format_from_name(backing_fmt) == VMC_FMT_AUTO) {
        if (!backing_fmt) {
            return vmc_error_set(err, -EINVAL, "could not change the "
                                 "backing file to '%s': backing format must "
                                 "be specified", name);
        }
        return vmc_error_set(err, -EINVAL, "could not change the backing "
                             "file to '%s': unknown backing format '%s'",
                             name, backing_fmt);
    }
    if (o->unsafe) {
        return vmc_image_set_backing(img, name, name ? backing_fmt : NULL,
                                     err);
    }
    c.old = vmc_image_backing(img);
    vmc_image_get_info(img, &info);
    if (info.backing_file && !c.old) {
        return vmc_error_set(err, -EINVAL, "the backing chain of '%s' is "
                             "not open: safe rebase needs the old backing "
                             "file", vmc_image_filename(img));
    }
    r = rebase_safe(&c, name, backing_fmt, o);
    free(c.buf_old);
    free(c.buf_new);
    vmc_image_close(c.new);
    return r;
}
