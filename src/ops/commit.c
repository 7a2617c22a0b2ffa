/*
 * commit.c - merge the layers above a base image into it (qemu-img
 * commit).
 *
 * Crash safety: data is only ever added to the base, and the top is
 * emptied only after the base was flushed. A crash during the copy leaves
 * the top intact and the guest view through it unchanged (the top still
 * defines every range that was being copied); a crash while emptying the
 * top leaves a mix of emptied and still-defined ranges that all read the
 * same data, since the base already holds it. With -b, the images
 * between the base and the top become invalid once the copy starts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops-internal.h"

struct commit {
    struct vmc_image *top;
    struct vmc_image *base;
    unsigned base_depth;
    struct vmc_error *err;
    uint8_t *buf;
    struct ops_progress progress;
};

static int
find_base(struct commit *c, const struct vmc_commit_opts *o)
{
    if (!vmc_image_backing(c->top)) {
        return vmc_error_set(c->err, -EINVAL, "image '%s' does not have a "
                             "backing file", vmc_image_filename(c->top));
    }
    if (!o->base) {
        c->base = vmc_image_backing(c->top);
        c->base_depth = 1;
        return 0;
    }
    return vmc_chain_find(c->top, o->base, &c->base, &c->base_depth, c->err);
}

/* Grow the base to the top's size; keep the new area reading as zeros
 * where the base's own backing file would show through. */
static int
grow_base(struct commit *c)
{
    uint64_t old = vmc_image_size(c->base);
    uint64_t size = vmc_image_size(c->top);
    struct vmc_image *below;
    uint64_t end;
    int r;

    if (size <= old) {
        return 0;
    }
    r = vmc_image_resize(c->base, size, c->err);
    if (r < 0) {
        vmc_error_prepend(c->err, "cannot grow the base image");
        return r;
    }
    below = vmc_image_backing(c->base);
    end = below ? ops_min(size, vmc_image_size(below)) : 0;
    if (end > old) {
        r = vmc_image_write_zeroes(c->base, old, end - old, 0);
        if (r < 0) {
            return vmc_error_set(c->err, r, "error while writing '%s' at "
                                 "offset %llu: %s",
                                 vmc_image_filename(c->base),
                                 (unsigned long long)old, strerror(-r));
        }
    }
    return 0;
}

/* Copy [off, off+n) of the top's guest view into the base. */
static int
copy_range(struct commit *c, uint64_t off, uint64_t n, bool zero)
{
    int r;

    if (zero) {
        r = vmc_image_write_zeroes(c->base, off, n, VMC_WRITE_MAY_UNMAP);
    } else {
        r = vmc_image_read(c->top, c->buf, off, n);
        if (r < 0) {
            return vmc_error_set(c->err, r, "error while reading '%s' at "
                                 "offset %llu: %s",
                                 vmc_image_filename(c->top),
                                 (unsigned long long)off, strerror(-r));
        }
        r = vmc_image_write(c->base, c->buf, off, n, 0);
    }
    if (r < 0) {
        return vmc_error_set(c->err, r, "error while writing '%s' at offset "
                             "%llu: %s", vmc_image_filename(c->base),
                             (unsigned long long)off, strerror(-r));
    }
    return 0;
}

/* Copy every range defined above the base. A range past the end of a
 * shorter intermediate layer reads as zeros and is committed as such. */
static int
copy_above_base(struct commit *c)
{
    uint64_t size = vmc_image_size(c->top);
    uint64_t off = 0;
    struct vmc_block_status bs;
    int r;

    while (off < size) {
        uint64_t n;

        r = vmc_image_block_status(c->top, off, ops_min(size - off,
                                   OPS_BUF_SIZE), true, &bs);
        if (r == 0 && (bs.length == 0 || bs.length > size - off)) {
            r = -EIO;
        }
        if (r < 0) {
            return vmc_error_set(c->err, r, "could not read the metadata "
                                 "of '%s' at offset %llu: %s",
                                 vmc_image_filename(c->top),
                                 (unsigned long long)off, strerror(-r));
        }
        n = bs.length;
        if (bs.depth < c->base_depth &&
            (bs.flags & (VMC_BS_ALLOCATED | VMC_BS_ZERO))) {
            r = copy_range(c, off, n, (bs.flags & VMC_BS_ZERO) != 0);
            if (r < 0) {
                return r;
            }
        }
        off += n;
        ops_progress_add(&c->progress, n);
    }
    return 0;
}

int
vmc_commit(struct vmc_image *top, const struct vmc_commit_opts *o,
           struct vmc_error *err)
{
    static const struct vmc_commit_opts defaults;
    struct commit c = { .top = top, .err = err };
    int r;

    if (!o) {
        o = &defaults;
    }
    r = find_base(&c, o);
    if (r < 0) {
        return r;
    }
    if (!o->keep_top && !vmc_image_is_writable(top)) {
        return vmc_error_set(err, -EROFS, "'%s' is opened read-only and "
                             "cannot be emptied", vmc_image_filename(top));
    }
    r = vmc_image_reopen_rw(c.base, err);
    if (r < 0) {
        vmc_error_prepend(err, "cannot open the base image for writing");
        return r;
    }
    c.buf = malloc(OPS_BUF_SIZE);
    if (!c.buf) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    ops_progress_init(&c.progress, o->progress, o->opaque,
                      vmc_image_size(top));
    r = grow_base(&c);
    if (r == 0) {
        r = copy_above_base(&c);
    }
    if (r < 0) {
        goto out;
    }
    r = vmc_image_flush(c.base);
    if (r < 0) {
        vmc_error_set(err, r, "cannot flush '%s': %s",
                      vmc_image_filename(c.base), strerror(-r));
        goto out;
    }
    if (!o->keep_top) {
        r = vmc_image_make_empty(top, err);
        if (r < 0) {
            vmc_error_prepend(err, "could not empty '%s'",
                              vmc_image_filename(top));
            goto out;
        }
    }
    ops_progress_finish(&c.progress);
out:
    free(c.buf);
    return r;
}
