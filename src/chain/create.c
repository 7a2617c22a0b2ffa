/*
 * create.c - image creation, the generic half: check the backing
 * reference, open the backing to size the new image and read its seal,
 * then let the driver lay out its file (format_ops.create) and, if asked,
 * preallocate it (format_ops.preallocate).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmclone.h"
#include "chain/engine/engine.h"
#include "format/format.h"
#include "chain/seal-hook.h"
#include "util/util.h"

void
vmc_create_opts_init(struct vmc_create_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->format = VMC_FMT_QCOW2;
    o->cluster_size = 65536;
    o->compat = 3;
    o->refcount_bits = 16;
}

/* Open the backing file of a new overlay: its size, and the parent-seal
 * record to write if it is a sealed template (*has_parent_seal). */
static int
backing_size(const struct vmc_create_opts *o, const char *path,
             uint64_t *size, uint8_t *parent_seal, bool *has_parent_seal,
             struct vmc_error *err)
{
    struct vmc_open_opts oo = {
        .format = o->backing_format,
        .flags = 0,
    };
    struct vmc_image *b = NULL;
    const char *slash = strrchr(path, '/');
    char *full = NULL;
    int r;

    if (o->backing_file[0] != '/' && slash) {
        size_t dl = (size_t)(slash - path) + 1;
        full = malloc(dl + strlen(o->backing_file) + 1);
        if (!full) {
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
        memcpy(full, path, dl);
        strcpy(full + dl, o->backing_file);
    }
    r = vmc_image_open(&b, full ? full : o->backing_file, &oo, err);
    free(full);
    if (r < 0) {
        vmc_error_prepend(err, "could not open backing image");
        return r;
    }
    *size = vmc_image_size(b);
    *has_parent_seal = seal_parent_ext(b, parent_seal) == 1;
    vmc_image_close(b);
    return 0;
}

/* Resolve the backing reference of @o into @p: size from the backing when
 * none was given, and the parent seal (@given_seal when @seal_given). */
static int
resolve_backing(const char *path, const struct vmc_create_opts *o,
                const uint8_t *given_seal, bool seal_given,
                struct format_create_params *p,
                uint8_t parent_seal[FORMAT_PARENT_SEAL_LEN],
                struct vmc_error *err)
{
    bool has_parent_seal = false;
    int r;

    if (o->backing_format != VMC_FMT_RAW &&
        o->backing_format != VMC_FMT_QCOW2) {
        return vmc_error_set(err, -EINVAL, "backing file specified "
                             "without backing format");
    }
    if (strlen(o->backing_file) > FORMAT_MAX_BACKING_NAME) {
        return vmc_error_set(err, -EINVAL, "backing file name too long "
                             "(more than %d bytes)", FORMAT_MAX_BACKING_NAME);
    }
    if (!o->backing_file[0]) {
        return vmc_error_set(err, -EINVAL, "empty backing file name");
    }
    if (!o->backing_unsafe) {
        uint64_t bsize = 0;
        r = backing_size(o, path, &bsize, parent_seal, &has_parent_seal,
                         err);
        if (r < 0) {
            return r;
        }
        if (!p->size) {
            p->size = align_up(bsize, 512);
        }
    } else if (!p->size) {
        return vmc_error_set(err, -EINVAL, "image creation needs a size "
                             "parameter");
    } else if (!seal_given) {
        /* Not opened for its size, but if it is there and sealed the new
         * overlay is tied to its seal all the same. */
        has_parent_seal = seal_parent_ext_of(path, o->backing_file,
                                             o->backing_format,
                                             parent_seal) == 1;
    }
    if (seal_given) {
        has_parent_seal = given_seal != NULL;
        if (given_seal) {
            memcpy(parent_seal, given_seal, FORMAT_PARENT_SEAL_LEN);
        }
    }
    p->backing_name = o->backing_file;
    p->backing_fmt = o->backing_format;
    p->parent_seal = has_parent_seal ? parent_seal : NULL;
    return 0;
}

static int
preallocate(const char *path, const struct format_ops *ops,
            const struct vmc_create_opts *o, struct vmc_error *err)
{
    struct vmc_open_opts oo = {
        .format = ops->format,
        .flags = VMC_OPEN_RDWR | VMC_OPEN_NO_BACKING,
    };
    struct vmc_image *img = NULL;
    int r, r2;

    r = vmc_image_open(&img, path, &oo, err);
    if (r < 0) {
        return r;
    }
    r = ops->preallocate(img, o->prealloc, err);
    r2 = vmc_image_close(img);
    if (!r && r2) {
        r = vmc_error_set(err, r2, "cannot flush '%s': %s", path,
                          strerror(-r2));
    }
    return r;
}

/* vmc_image_create(); @given_seal (when @seal_given) is the parent-seal
 * record to write instead of the backing file's. */
static int
image_create(const char *path, const struct vmc_create_opts *o,
             const uint8_t *given_seal, bool seal_given,
             struct vmc_error *err)
{
    uint8_t parent_seal[FORMAT_PARENT_SEAL_LEN];
    struct format_create_params p = {
        /* Sizes are whole 512-byte sectors, as in QEMU. */
        .size = align_up(o->size, 512),
        .opts = o,
    };
    const struct format_ops *ops;
    int r;

    if (o->backing_file) {
        r = resolve_backing(path, o, given_seal, seal_given, &p, parent_seal,
                            err);
        if (r < 0) {
            return r;
        }
    }
    ops = format_ops_for(o->format);
    if (!ops) {
        return vmc_error_set(err, -EINVAL, "unknown image format");
    }
    if (!ops->create) {
        return vmc_error_set(err, -ENOTSUP, "%s images are read-only here: "
                             "cannot create one", ops->name);
    }
    r = ops->create(path, &p, err);
    if (r == 0 && ops->preallocate && o->prealloc != VMC_PREALLOC_OFF &&
        p.size) {
        r = preallocate(path, ops, o, err);
    }
    return r;
}

int
vmc_image_create(const char *path, const struct vmc_create_opts *o,
                 struct vmc_error *err)
{
    return image_create(path, o, NULL, false, err);
}

int
engine_image_create_with_parent_seal(const char *path,
                                     const struct vmc_create_opts *o,
                                     const uint8_t *parent_seal,
                                     struct vmc_error *err)
{
    return image_create(path, o, parent_seal, true, err);
}
