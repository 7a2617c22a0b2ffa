/*
 * ext-image.c - images whose bytes live outside host files (engine.h,
 * struct engine_ext_ops): a format driver that forwards the data path to
 * the callbacks a layer above the engine supplies (the rbd images of
 * src/ops/rbd-image.c), so that everything built on struct vmc_image
 * (the public data path, block status, the NBD server) uses them as it
 * uses a raw file. One layer: no file, no backing chain, no seal, no
 * locks of the engine (the storage has its own). Such an image can be
 * the backing layer of a qcow2 overlay opened alone
 * (engine_image_attach_backing(): the throwaway overlays of serve
 * --snapshot over an rbd image).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chain/engine/engine.h"
#include "format/format.h"

struct ext_state {
    const struct engine_ext_ops *ops;
    void *priv;
    uint64_t granularity;
};

static struct ext_state *
state(const struct vmc_image *img)
{
    return img->priv;
}

static void
ext_close(struct vmc_image *img)
{
    struct ext_state *s = state(img);

    s->ops->close(s->priv);
    free(s);
    img->priv = NULL;
}

static int
ext_read(struct vmc_image *img, void *buf, uint64_t off, size_t len)
{
    assert(format_entry_ok(img, off, len));
    return state(img)->ops->read(state(img)->priv, buf, off, len);
}

static int
ext_write(struct vmc_image *img, const void *buf, uint64_t off, size_t len,
          unsigned flags)
{
    assert(format_entry_ok(img, off, len));
    (void)flags;                /* FUA: the chain flushes afterwards */
    return state(img)->ops->write(state(img)->priv, buf, off, len);
}

static int
ext_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                 unsigned flags)
{
    assert(format_entry_ok(img, off, len));
    return state(img)->ops->write_zeroes(state(img)->priv, off, len,
                                         (flags & VMC_WRITE_MAY_UNMAP) != 0);
}

static int
ext_discard(struct vmc_image *img, uint64_t off, uint64_t len)
{
    assert(format_entry_ok(img, off, len));
    return state(img)->ops->discard(state(img)->priv, off, len);
}

static int
ext_flush(struct vmc_image *img)
{
    assert(image_lock_held(img));
    return state(img)->ops->flush(state(img)->priv);
}

static int
ext_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                 struct vmc_block_status *out)
{
    bool data = false;
    uint64_t run = 0;
    int r;

    assert(format_entry_ok(img, off, len));
    r = state(img)->ops->block_status(state(img)->priv, off, len, &data,
                                      &run);
    if (r < 0) {
        return r;
    }
    if (run == 0 || run > len) {
        return -EIO;
    }
    memset(out, 0, sizeof(*out));
    out->length = run;
    /* not allocated: defined nowhere, so the chain reports zeros */
    out->flags = data ? VMC_BS_ALLOCATED | VMC_BS_DATA : 0;
    return 0;
}

static int
ext_resize(struct vmc_image *img, uint64_t new_size, struct vmc_error *err)
{
    (void)new_size;
    return vmc_error_set(err, -ENOTSUP, "'%s': resizing is not supported "
                         "through this image", img->filename);
}

static void
ext_get_info(const struct vmc_image *img, struct vmc_image_info *info)
{
    info->file_length = img->size;
}

static uint64_t
ext_granularity(const struct vmc_image *img)
{
    return state(img)->granularity;
}

/* No open/create: these images are made by engine_image_ext_new() only. */
static const struct format_ops ext_ops = {
    .name = "raw",
    .format = VMC_FMT_RAW,
    .close = ext_close,
    .read = ext_read,
    .write = ext_write,
    .write_zeroes = ext_write_zeroes,
    .discard = ext_discard,
    .flush = ext_flush,
    .block_status = ext_block_status,
    .resize = ext_resize,
    .get_info = ext_get_info,
    .granularity = ext_granularity,
};

int
engine_image_ext_new(struct vmc_image **out, const char *name,
                     uint64_t size, uint64_t granularity, bool writable,
                     const struct engine_ext_ops *ops, void *priv,
                     struct vmc_error *err)
{
    struct vmc_image *img = calloc(1, sizeof(*img));
    struct ext_state *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!img || !s || !(img->filename = strdup(name))) {
        free(img);
        free(s);
        ops->close(priv);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    pthread_mutex_init(&img->lock, NULL);
    pthread_mutex_init(&img->map_lock, NULL);
    s->ops = ops;
    s->priv = priv;
    s->granularity = granularity && !(granularity & (granularity - 1))
                     ? granularity : 4096;
    img->ops = &ext_ops;
    img->priv = s;
    img->size = size;
    img->writable = writable;
    img->open_flags = writable ? VMC_OPEN_RDWR : 0;
    *out = img;
    return 0;
}

int
engine_image_attach_backing(struct vmc_image *top, struct vmc_image *backing,
                            struct vmc_error *err)
{
    if (top->backing || !top->backing_name || !top->backing_io) {
        return vmc_error_set(err, -EINVAL, "'%s': not an overlay opened "
                             "without its backing", top->filename);
    }
    if (backing->size != top->size) {
        return vmc_error_set(err, -EINVAL, "'%s' (%" PRIu64 " bytes) cannot "
                             "be the backing of '%s' (%" PRIu64 " bytes)",
                             backing->filename, backing->size, top->filename,
                             top->size);
    }
    backing->depth = top->depth + 1;
    /* no merged map over it: reads go through its own data path */
    pthread_mutex_lock(&backing->map_lock);
    backing->map_unavailable = true;
    pthread_mutex_unlock(&backing->map_lock);
    top->backing = backing;
    return 0;
}
