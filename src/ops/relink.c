/*
 * relink.c - full image -> linked clone: rewrite an image as an overlay
 * of a template that keeps only what differs, and flatten (the way back).
 *
 * Relink builds the new overlay in a temporary file next to the image:
 * for each allocation unit of the overlay (a 4 KiB subcluster with the
 * default extended L2 layout, else a cluster) the image's guest view is
 * compared with the template's; equal units stay unallocated (they read
 * through), differing ones are written, and units where the image reads
 * zeros over non-zero template data become zero units. Ranges the image
 * reports as zero (block status) are not read; ranges where both read
 * zeros are skipped without reading either. The overlay is flushed and
 * closed (durable), then renamed over the image and the directory synced.
 *
 * Crash safety: until the rename the image is untouched (the temporary
 * file is garbage at worst); the rename is atomic; after it the overlay,
 * complete and durable, stands under the image's name. We hold the image
 * open read-write (locked) throughout, so no other process uses it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops-file.h"
#include "ops-internal.h"
#include "view-io.h"

struct relink {
    struct vmc_image *img;
    struct vmc_image *tmpl;
    struct vmc_image *out;
    const char *out_name;
    struct vmc_error *err;
    uint64_t size;
    uint64_t unit;
    uint8_t *buf_img;
    uint8_t *buf_tmpl;
    uint64_t written;
    struct ops_progress progress;
};

void
vmc_relink_opts_init(struct vmc_relink_opts *o)
{
    memset(o, 0, sizeof(*o));
    vmc_create_opts_init(&o->create);
    o->create.extended_l2 = true;
    o->create.cluster_size = 128 * 1024;
}

int
vmc_flatten(struct vmc_image *img, vmc_progress_fn progress, void *opaque,
            struct vmc_error *err)
{
    struct vmc_rebase_opts ro = { .progress = progress, .opaque = opaque };

    return vmc_rebase(img, NULL, NULL, &ro, err);
}

/* Does [off, off+n) of @img read as zeros, by block status alone? */
static int
reads_zero(struct relink *c, struct vmc_image *img, uint64_t off,
           uint64_t n, bool *zero)
{
    struct vmc_block_status bs;
    uint64_t end = off + n, isize = vmc_image_size(img);
    int r;

    *zero = true;
    end = ops_min(end, isize);
    while (off < end) {
        r = vmc_image_block_status(img, off, end - off, true, &bs);
        if (r == 0 && (bs.length == 0 || bs.length > end - off)) {
            r = -EIO;
        }
        if (r < 0) {
            return vmc_error_set(c->err, r, "could not read the metadata of "
                                 "'%s' at offset %llu: %s",
                                 vmc_image_filename(img),
                                 (unsigned long long)off, strerror(-r));
        }
        if (!(bs.flags & VMC_BS_ZERO)) {
            *zero = false;
            return 0;
        }
        off += bs.length;
    }
    return 0;
}

/* Write @n bytes of the image's view at @off into the overlay: data, or
 * zeros when @buf is NULL or all zero. */
static int
emit(struct relink *c, const uint8_t *buf, uint64_t off, uint64_t n)
{
    int r = ops_write_view(c->out, buf, off, n, "", c->err);

    if (r == 0) {
        c->written += n;
    }
    return r;
}

/* Compare one chunk unit by unit and emit the differing runs. */
static int
diff_chunk(struct relink *c, uint64_t off, uint64_t n)
{
    bool img_zero, tmpl_zero;
    uint64_t pos, run = 0, run_start = 0;
    bool run_zero = false;
    int r;

    r = reads_zero(c, c->img, off, n, &img_zero);
    if (r == 0) {
        r = reads_zero(c, c->tmpl, off, n, &tmpl_zero);
    }
    if (r < 0 || (img_zero && tmpl_zero)) {
        return r;
    }
    if (img_zero) {
        memset(c->buf_img, 0, n);
    } else {
        r = ops_read_view(c->img, c->buf_img, off, n, "", c->err);
    }
    if (r == 0) {
        if (tmpl_zero) {
            memset(c->buf_tmpl, 0, n);
        } else {
            r = ops_read_view(c->tmpl, c->buf_tmpl, off, n, "", c->err);
        }
    }
    if (r < 0) {
        return r;
    }
    for (pos = 0; pos < n; pos += c->unit) {
        uint64_t len = ops_min(c->unit, n - pos);
        bool differs = memcmp(c->buf_img + pos, c->buf_tmpl + pos, len) != 0;
        bool zero = differs && buffer_is_zero(c->buf_img + pos, len);

        if (run && (!differs || zero != run_zero)) {
            r = emit(c, run_zero ? NULL : c->buf_img + run_start,
                     off + run_start, run);
            if (r < 0) {
                return r;
            }
            run = 0;
        }
        if (differs) {
            if (!run) {
                run_start = pos;
                run_zero = zero;
            }
            run += len;
        }
    }
    if (run) {
        return emit(c, run_zero ? NULL : c->buf_img + run_start,
                    off + run_start, run);
    }
    return 0;
}

static int
check_template(struct relink *c, const char *template)
{
    const struct vmc_image *layer;
    struct stat me, st;

    if (vmc_image_size(c->img) > vmc_image_size(c->tmpl)) {
        return vmc_error_set(c->err, -EINVAL, "'%s' (%llu bytes) does not "
                             "fit in template '%s' (%llu bytes)",
                             vmc_image_filename(c->img),
                             (unsigned long long)vmc_image_size(c->img),
                             template,
                             (unsigned long long)vmc_image_size(c->tmpl));
    }
    if (stat(vmc_image_filename(c->img), &me) < 0) {
        return 0;
    }
    for (layer = c->tmpl; layer; layer = vmc_image_backing(layer)) {
        if (stat(vmc_image_filename(layer), &st) == 0 &&
            st.st_dev == me.st_dev && st.st_ino == me.st_ino) {
            return vmc_error_set(c->err, layer == c->tmpl ? -EINVAL : -ELOOP,
                                 "template '%s' %s '%s'", template,
                                 layer == c->tmpl ? "is the image" :
                                 "is backed by", vmc_image_filename(c->img));
        }
    }
    return 0;
}

static int
open_inputs(struct relink *c, const char *img_path, const char *template,
            const char *fmt, const struct vmc_relink_opts *o)
{
    struct vmc_open_opts io = { 0 }, to = { 0 };
    char *tpath = NULL;
    int r;

    if (o->img_open) {
        io = *o->img_open;
    }
    /* Read-write: the lock keeps every other writer and reader away
     * while we replace the file. */
    io.flags = VMC_OPEN_RDWR | (io.flags & VMC_OPEN_FORCE_SHARE);
    r = vmc_image_open(&c->img, img_path, &io, c->err);
    if (r < 0) {
        return r;
    }
    to.format = vmc_format_from_name(fmt);
    if (to.format == VMC_FMT_AUTO) {
        return vmc_error_set(c->err, -EINVAL, "the template format must be "
                             "given (qcow2 or raw)");
    }
    r = vmc_backing_path_resolve(img_path, template, &tpath);
    if (r < 0) {
        return vmc_error_set(c->err, r, "out of memory");
    }
    r = vmc_image_open(&c->tmpl, tpath, &to, c->err);
    free(tpath);
    if (r < 0) {
        vmc_error_prepend(c->err, "could not open template '%s'", template);
        return r;
    }
    return check_template(c, template);
}

static int
build_overlay(struct relink *c, const char *tmp, const char *template,
              const char *fmt, const struct vmc_relink_opts *o)
{
    struct vmc_create_opts co = o->create;
    struct vmc_open_opts oo = {
        .format = VMC_FMT_QCOW2,
        .flags = VMC_OPEN_RDWR,     /* with the template: partial writes
                                     * and zeroes must see it */
    };
    uint64_t off, n, chunk;
    int r;

    co.format = VMC_FMT_QCOW2;
    co.size = ops_align_up(c->size, OPS_SECTOR);
    co.backing_file = template;
    co.backing_format = vmc_format_from_name(fmt);
    co.backing_unsafe = true;
    r = vmc_image_create(tmp, &co, c->err);
    if (r < 0) {
        return r;
    }
    r = vmc_image_open(&c->out, tmp, &oo, c->err);
    if (r < 0) {
        return r;
    }
    c->unit = vmc_image_cluster_size(c->out);
    if (co.extended_l2) {
        c->unit /= 32;
    }
    chunk = ops_max(OPS_BUF_SIZE, vmc_image_cluster_size(c->out));
    c->buf_img = malloc(chunk);
    c->buf_tmpl = malloc(chunk);
    if (!c->buf_img || !c->buf_tmpl) {
        return vmc_error_set(c->err, -ENOMEM, "out of memory");
    }
    ops_progress_init(&c->progress, o->progress, o->opaque, c->size);
    for (off = 0; off < c->size; off += n) {
        n = ops_min(c->size - off, chunk - (off & (chunk - 1)));
        r = diff_chunk(c, off, n);
        if (r < 0) {
            return r;
        }
        ops_progress_add(&c->progress, n);
    }
    r = vmc_image_flush(c->out);
    if (r < 0) {
        return vmc_error_set(c->err, r, "cannot flush '%s': %s", tmp,
                             strerror(-r));
    }
    r = vmc_image_close(c->out);
    c->out = NULL;
    if (r < 0) {
        return vmc_error_set(c->err, r, "cannot close '%s': %s", tmp,
                             strerror(-r));
    }
    return 0;
}

int
vmc_relink(const char *img_path, const char *template,
           const char *template_fmt, const struct vmc_relink_opts *o,
           struct vmc_relink_result *res, struct vmc_error *err)
{
    struct relink c = { .err = err };
    struct stat st;
    char *tmp = NULL;
    int r;

    memset(res, 0, sizeof(*res));
    if (!template || !*template) {
        return vmc_error_set(err, -EINVAL, "a template is required");
    }
    r = open_inputs(&c, img_path, template, template_fmt, o);
    if (r < 0) {
        goto out;
    }
    c.size = vmc_image_size(c.img);
    ops_file_allocated(img_path, &res->bytes_before);
    r = ops_tmp_create(img_path, &tmp, NULL, err);
    if (r < 0) {
        goto out;
    }
    c.out_name = tmp;
    r = build_overlay(&c, tmp, template, template_fmt, o);
    if (r < 0) {
        goto out;
    }
    if (stat(img_path, &st) == 0) {
        /* Keep the image's permissions (and owner, when we may). */
        if (chmod(tmp, st.st_mode & 07777) < 0 ||
            (geteuid() == 0 && chown(tmp, st.st_uid, st.st_gid) < 0)) {
            r = -errno;
            vmc_error_set(err, r, "cannot set the mode of '%s': %s", tmp,
                          strerror(-r));
            goto out;
        }
    }
    r = ops_rename(tmp, img_path, true, err);
    if (r < 0) {
        goto out;
    }
    free(tmp);
    tmp = NULL;
    r = ops_fsync_parent(img_path, err);
    if (r < 0) {
        goto out;
    }
    ops_file_allocated(img_path, &res->bytes_after);
    res->bytes_written = c.written;
    ops_progress_finish(&c.progress);
out:
    vmc_image_close(c.out);
    vmc_image_close(c.tmpl);
    vmc_image_close(c.img);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(c.buf_img);
    free(c.buf_tmpl);
    return r;
}
