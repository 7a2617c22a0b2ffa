/*
 * raw.c - the raw format driver: guest offset == file offset.
 * Holes (SEEK_HOLE) are reported as unallocated zeros; write-zeroes and
 * discard punch holes where the file system can.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "util/util.h"

struct raw_state {
    int unused;
};

/* format_ops.create: an empty (sparse or preallocated) file. */
static int
raw_create(const char *path, const struct format_create_params *p,
           struct vmc_error *err)
{
    enum vmc_prealloc mode = p->opts->prealloc;
    struct hio_file *f = NULL;
    int r;

    if (p->backing_name) {
        return vmc_error_set(err, -EINVAL, "raw images cannot have a "
                             "backing file");
    }
    r = hio_open(&f, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (r < 0) {
        return vmc_error_set(err, r, "could not create '%s': %s", path,
                             strerror(-r));
    }
    r = hio_truncate(f, p->size);
    if (!r && p->size && (mode == VMC_PREALLOC_FALLOC ||
                          mode == VMC_PREALLOC_FULL)) {
        r = hio_allocate(f, 0, p->size);
    }
    if (!r) {
        r = hio_sync(f);
    }
    hio_close(f);
    return r < 0 ? vmc_error_set(err, r, "cannot write '%s': %s", path,
                                 strerror(-r)) : 0;
}

static int
raw_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    uint64_t len;
    int r = hio_length(img->file, &len);

    if (r < 0) {
        return vmc_error_set(err, r, "cannot stat '%s': %s", img->filename,
                             strerror(-r));
    }
    /* Whole 512-byte sectors, as QEMU presents raw files; the tail past
     * the end of the file reads as zeros. */
    img->size = align_up(len, 512);
    img->priv = calloc(1, sizeof(struct raw_state));
    return img->priv ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");
}

static void
raw_close(struct vmc_image *img)
{
    free(img->priv);
    img->priv = NULL;
}

static int
raw_read(struct vmc_image *img, void *buf, uint64_t off, size_t len)
{
    return hio_pread(img->file, buf, len, off);
}

static int
raw_write(struct vmc_image *img, const void *buf, uint64_t off, size_t len,
          unsigned flags)
{
    return hio_pwrite(img->file, buf, len, off);
}

static int
raw_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                 unsigned flags)
{
    return hio_zero_range(img->file, off, len,
                          (flags & VMC_WRITE_MAY_UNMAP) != 0);
}

static int
raw_discard(struct vmc_image *img, uint64_t off, uint64_t len)
{
    return hio_zero_range(img->file, off, len, true);
}

static int
raw_flush(struct vmc_image *img)
{
    return hio_sync(img->file);
}

static int
raw_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                 struct vmc_block_status *out)
{
    bool is_data;
    uint64_t run;
    int r = hio_data_run(img->file, off, len, &is_data, &run);

    if (r < 0) {
        return r;
    }
    memset(out, 0, sizeof(*out));
    out->length = run ? run : len;
    out->flags = VMC_BS_ALLOCATED | VMC_BS_OFFSET |
                 (is_data ? VMC_BS_DATA : VMC_BS_ZERO);
    out->host_offset = off;
    return 0;
}

static int
raw_resize(struct vmc_image *img, uint64_t new_size, struct vmc_error *err)
{
    int r = hio_truncate(img->file, new_size);

    if (r < 0) {
        return vmc_error_set(err, r, "cannot resize '%s': %s", img->filename,
                             strerror(-r));
    }
    img->size = new_size;
    return 0;
}

static uint64_t
raw_granularity(const struct vmc_image *img)
{
    return 4096;
}

const struct format_ops raw_ops = {
    .name = "raw",
    .format = VMC_FMT_RAW,
    .create = raw_create,
    .open = raw_open,
    .close = raw_close,
    .read = raw_read,
    .write = raw_write,
    .write_zeroes = raw_write_zeroes,
    .discard = raw_discard,
    .flush = raw_flush,
    .block_status = raw_block_status,
    .resize = raw_resize,
    .granularity = raw_granularity,
};
