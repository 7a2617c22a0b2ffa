/*
 * chain.c - open an image with its backing chain, and the public data path.
 *
 * Backing references are untrusted metadata. They are resolved here, once,
 * with these rules (docs/design/qcow2-engine.md, "Backing references are
 * untrusted"):
 *  1. the backing format must be recorded in the overlay (or named by the
 *     caller); it is never probed;
 *  2. the name is a plain path: "json:" and "proto:" names are refused;
 *  3. a relative name is resolved against the overlay's directory as it
 *     was opened (like QEMU);
 *  4. a layer seen twice (same st_dev/st_ino: names, hardlinks, symlinks)
 *     is a loop; chains deeper than opts->max_depth are refused.
 * Backing layers are opened read-only with QEMU-compatible shared locks.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmclone.h"
#include "chain/chain-map.h"
#include "format/format.h"
#include "format/foreign.h"
#include "chain/seal-hook.h"
#include "util/util.h"

const struct format_ops *
format_ops_for(enum vmc_format fmt)
{
    switch (fmt) {
    case VMC_FMT_RAW: return &raw_ops;
    case VMC_FMT_QCOW2: return &qcow2_ops;
    case VMC_FMT_VPC: return &vpc_ops;
    case VMC_FMT_VDI: return &vdi_ops;
    case VMC_FMT_VHDX: return &vhdx_ops;
    case VMC_FMT_VMDK: return &vmdk_ops;
    default: return NULL;
    }
}

/* Is @name something other than a plain file path? */
static bool
is_protocol_name(const char *name)
{
    const char *p;

    if (!strncmp(name, "json:", 5)) {
        return true;
    }
    for (p = name; *p && *p != '/'; p++) {
        if (*p == ':') {
            return p != name;   /* "proto:..." before any slash */
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
              *p == '.' || *p == '_')) {
            return false;
        }
    }
    return false;
}

/* Resolve @name relative to the directory of @overlay_path. */
static char *
resolve_backing_path(const char *overlay_path, const char *name)
{
    const char *slash;
    char *out;
    size_t dirlen;

    if (name[0] == '/') {
        return strdup(name);
    }
    slash = strrchr(overlay_path, '/');
    if (!slash) {
        return strdup(name);
    }
    dirlen = (size_t)(slash - overlay_path) + 1;
    out = malloc(dirlen + strlen(name) + 1);
    if (out) {
        memcpy(out, overlay_path, dirlen);
        strcpy(out + dirlen, name);
    }
    return out;
}

static void
image_free(struct vmc_image *img)
{
    if (!img) {
        return;
    }
    if (img->ops && img->priv) {
        img->ops->close(img);
    }
    chain_map_free(img->map);
    seal_free(img->seal);
    pthread_mutex_destroy(&img->map_lock);
    hio_close(img->file);
    free(img->filename);
    free(img->backing_name);
    free(img->backing_fmt);
    free(img->backing_path);
    pthread_mutex_destroy(&img->lock);
    free(img);
}

struct open_ctx {
    const struct vmc_open_opts *opts;
    unsigned max_depth;
    uint64_t table_left;   /* table memory the layers below may take */
    uint64_t (*seen)[2];   /* dev, ino of layers above */
    unsigned nseen;
};

static const struct format_backing_io chain_backing_io;
static int open_layer(struct vmc_image **out, const char *path,
                      enum vmc_format fmt, bool top, unsigned depth,
                      struct open_ctx *ctx, struct vmc_error *err);

/* ------------------------------------------------ shared backing layers */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vmc_image *registry;

static struct vmc_image *
registry_find_locked(uint64_t dev, uint64_t ino, enum vmc_format fmt,
                     unsigned flags)
{
    struct vmc_image *l;

    for (l = registry; l; l = l->registry_next) {
        if (l->file->dev == dev && l->file->ino == ino &&
            l->shared_fmt == fmt && l->open_flags == flags && !l->writable) {
            return l;
        }
    }
    return NULL;
}

static void
registry_remove_locked(struct vmc_image *img)
{
    struct vmc_image **pp;

    for (pp = &registry; *pp; pp = &(*pp)->registry_next) {
        if (*pp == img) {
            *pp = img->registry_next;
            return;
        }
    }
}

/* Can the shared chain @l be used below the layers in @ctx? */
static int
check_shared_chain(struct vmc_image *l, unsigned depth, struct open_ctx *ctx,
                   struct vmc_error *err)
{
    uint64_t bytes = 0;
    unsigned n = 0, i;

    for (; l; l = l->backing, n++) {
        bytes += l->table_bytes;
        for (i = 0; i < ctx->nseen; i++) {
            if (ctx->seen[i][0] == l->file->dev &&
                ctx->seen[i][1] == l->file->ino) {
                return vmc_error_set(err, -ELOOP, "backing file '%s' creates "
                                     "a loop in the chain", l->filename);
            }
        }
    }
    if (depth + n > ctx->max_depth + 1) {
        return vmc_error_set(err, -ELOOP, "backing chain is deeper than the "
                             "limit of %u layers", ctx->max_depth);
    }
    if (bytes > ctx->table_left) {
        return vmc_error_set(err, -ENOMEM, "the tables of the backing chain "
                             "need %llu KiB, more than the %llu KiB left of "
                             "the chain's table memory limit",
                             (unsigned long long)(bytes >> 10),
                             (unsigned long long)(ctx->table_left >> 10));
    }
    ctx->table_left -= bytes;
    return 0;
}

/* Open backing layer @path, sharing an already open one when possible. */
static int
open_shared_layer(struct vmc_image **out, const char *path,
                  enum vmc_format fmt, unsigned depth, struct open_ctx *ctx,
                  struct vmc_error *err)
{
    unsigned flags = ctx->opts ? (ctx->opts->flags & VMC_OPEN_FORCE_SHARE)
                               : 0;
    struct vmc_image *l, *mine = NULL;
    struct stat st;
    int r;

    if (stat(path, &st) == 0) {
        pthread_mutex_lock(&registry_lock);
        l = registry_find_locked(st.st_dev, st.st_ino, fmt, flags);
        if (l) {
            r = check_shared_chain(l, depth, ctx, err);
            if (r == 0) {
                l->refcnt++;
                *out = l;
            }
            pthread_mutex_unlock(&registry_lock);
            return r;
        }
        pthread_mutex_unlock(&registry_lock);
    }
    r = open_layer(&mine, path, fmt, false, depth, ctx, err);
    if (r < 0) {
        return r;
    }
    pthread_mutex_lock(&registry_lock);
    l = registry_find_locked(mine->file->dev, mine->file->ino, fmt, flags);
    if (l) {
        /* Another thread opened it meanwhile: use theirs. */
        l->refcnt++;
        pthread_mutex_unlock(&registry_lock);
        vmc_image_close(mine);
        *out = l;
        return 0;
    }
    mine->shared = true;
    mine->refcnt = 1;
    mine->shared_fmt = fmt;
    mine->registry_next = registry;
    registry = mine;
    pthread_mutex_unlock(&registry_lock);
    *out = mine;
    return 0;
}

static int
open_backing(struct vmc_image *img, unsigned depth, struct open_ctx *ctx,
             struct vmc_error *err)
{
    enum vmc_format bfmt;
    const char *fmtname = img->backing_fmt;
    int r;

    if (strlen(img->backing_name) == 0) {
        return vmc_error_set(err, -EUCLEAN, "'%s' has an empty backing "
                             "file name", img->filename);
    }
    if (is_protocol_name(img->backing_name)) {
        return vmc_error_set(err, -EPERM, "'%s': backing file name '%s' is "
                             "not a plain path (json: and protocol names "
                             "are refused)", img->filename, img->backing_name);
    }
    if (!fmtname) {
        fmtname = ctx->opts ? ctx->opts->backing_format : NULL;
        if (!fmtname) {
            return vmc_error_set(err, -EPERM, "'%s' does not record the "
                                 "format of its backing file '%s'; refusing "
                                 "to probe it (name the format explicitly "
                                 "with --backing-fmt, or fix the image with "
                                 "'rebase -u -F')", img->filename,
                                 img->backing_name);
        }
    }
    bfmt = vmc_format_from_name(fmtname);
    if (bfmt == VMC_FMT_AUTO) {
        return vmc_error_set(err, -ENOTSUP, "'%s': unsupported backing "
                             "format '%s'", img->filename, fmtname);
    }
    if (depth + 1 > ctx->max_depth) {
        return vmc_error_set(err, -ELOOP, "'%s': backing chain is deeper "
                             "than the limit of %u layers", img->filename,
                             ctx->max_depth);
    }
    img->backing_path = resolve_backing_path(img->filename, img->backing_name);
    if (!img->backing_path) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = open_shared_layer(&img->backing, img->backing_path, bfmt, depth + 1,
                          ctx, err);
    if (r < 0) {
        if (r != -ELOOP) {
            vmc_error_prepend(err, "cannot open backing file of '%s'",
                              img->filename);
        }
        return r;
    }
    return seal_check_parent(img, err);
}

static int
lock_layer(struct vmc_image *img, bool top, struct vmc_error *err)
{
    const char *what = "";
    unsigned perm = HIO_PERM_CONSISTENT_READ;
    unsigned unshared = HIO_PERM_WRITE | HIO_PERM_RESIZE;
    int r;

    if (img->writable) {
        perm |= HIO_PERM_WRITE | HIO_PERM_RESIZE;
    }
    r = hio_lock(img->file, perm, unshared, &what);
    if (r == -EBUSY) {
        return vmc_error_set(err, -EBUSY, "failed to get %s\"%s\" lock on "
                             "'%s': is another process using the image?",
                             img->writable ? "" : "shared ", what,
                             img->filename);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "cannot lock '%s': %s", img->filename,
                             strerror(-r));
    }
    return 0;
}

static int
open_layer(struct vmc_image **out, const char *path, enum vmc_format fmt,
           bool top, unsigned depth, struct open_ctx *ctx,
           struct vmc_error *err)
{
    const struct vmc_open_opts *opts = ctx->opts;
    unsigned flags = top && opts ? opts->flags : 0;
    const char *kind = NULL;
    struct vmc_image *img;
    unsigned i;
    int r;

    if (!top) {
        flags = opts ? (opts->flags & VMC_OPEN_FORCE_SHARE) : 0;
    }
    img = calloc(1, sizeof(*img));
    if (!img) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    pthread_mutex_init(&img->lock, NULL);
    pthread_mutex_init(&img->map_lock, NULL);
    img->backing_io = &chain_backing_io;
    img->depth = depth;
    img->open_flags = flags;
    img->writable = (flags & VMC_OPEN_RDWR) != 0;
    img->filename = strdup(path);
    if (!img->filename) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    r = hio_open_image(&img->file, path, img->writable ? O_RDWR : O_RDONLY,
                       top || (opts && (opts->flags &
                                        VMC_OPEN_BACKING_BLOCKDEV)),
                       &kind);
    if (r == -EINVAL && kind) {
        vmc_error_set(err, r, "could not open '%s': it is %s, not a regular "
                      "file%s", path, kind, top ? " or block device" :
                      " (block devices as backing files only when asked)");
        goto fail;
    }
    if (r < 0) {
        vmc_error_set(err, r, "could not open '%s': %s", path, strerror(-r));
        goto fail;
    }
    for (i = 0; i < ctx->nseen; i++) {
        if (ctx->seen[i][0] == img->file->dev &&
            ctx->seen[i][1] == img->file->ino) {
            r = vmc_error_set(err, -ELOOP, "backing file '%s' creates a "
                              "loop in the chain", path);
            goto fail;
        }
    }
    ctx->seen[ctx->nseen][0] = img->file->dev;
    ctx->seen[ctx->nseen][1] = img->file->ino;
    ctx->nseen++;

    if (!(flags & VMC_OPEN_FORCE_SHARE)) {
        r = lock_layer(img, top, err);
        if (r < 0) {
            goto fail;
        }
    }
    if (fmt == VMC_FMT_AUTO &&
        (r = format_probe_open(img->file, path, &fmt, err)) < 0) {
        goto fail;
    }
    img->ops = format_ops_for(fmt);
    if (!img->ops) {
        r = vmc_error_set(err, -ENOTSUP, "unsupported format");
        goto fail;
    }
    img->table_budget = ctx->table_left;
    r = img->ops->open(img, flags, err);
    if (r < 0) {
        goto fail;
    }
    ctx->table_left -= MIN(ctx->table_left, img->table_bytes);
    r = seal_attach(img, flags, err);
    if (r < 0) {
        goto fail;
    }
    if (img->backing_name && !(opts && (opts->flags & VMC_OPEN_NO_BACKING))) {
        r = open_backing(img, depth, ctx, err);
        if (r < 0) {
            goto fail;
        }
    }
    *out = img;
    return 0;

fail:
    if (img->backing) {
        vmc_image_close(img->backing);
        img->backing = NULL;
    }
    image_free(img);
    return r;
}

int
vmc_image_open(struct vmc_image **out, const char *path,
               const struct vmc_open_opts *opts, struct vmc_error *err)
{
    struct open_ctx ctx = { .opts = opts };
    int r;

    ctx.max_depth = opts && opts->max_depth ? opts->max_depth
                                            : VMC_DEFAULT_MAX_DEPTH;
    ctx.table_left = opts && opts->max_table_memory
                     ? opts->max_table_memory : VMC_DEFAULT_MAX_TABLE_MEMORY;
    ctx.seen = calloc(ctx.max_depth + 2, sizeof(*ctx.seen));
    if (!ctx.seen) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = open_layer(out, path, opts ? opts->format : VMC_FMT_AUTO, true, 0,
                   &ctx, err);
    free(ctx.seen);
    return r;
}

/* Flush one layer (lock held), unless it is in a failed state. */
static int
flush_layer(struct vmc_image *img)
{
    int r = image_failed_state(img);

    return r < 0 ? r : img->ops->flush(img);
}

int
vmc_image_close(struct vmc_image *img)
{
    int r = 0;

    while (img) {
        struct vmc_image *below = img->backing;
        int r2 = 0;

        if (img->shared) {
            bool last;

            pthread_mutex_lock(&registry_lock);
            assert(img->refcnt > 0);   /* each chain holds one */
            last = --img->refcnt == 0;
            if (last) {
                registry_remove_locked(img);
            }
            pthread_mutex_unlock(&registry_lock);
            if (!last) {
                break;   /* still used by another chain */
            }
        }

        if (img->writable && img->priv) {
            image_lock(img);
            r2 = flush_layer(img);
            image_unlock(img);
        }
        if (!r) {
            r = r2;
        }
        image_free(img);
        img = below;
    }
    return r;
}

uint64_t vmc_image_size(const struct vmc_image *img) { return img->size; }

enum vmc_format
vmc_image_format(const struct vmc_image *img)
{
    return img->ops->format;
}

const char *vmc_image_filename(const struct vmc_image *img)
{
    return img->filename;
}

struct vmc_image *vmc_image_backing(const struct vmc_image *img)
{
    return img->backing;
}

bool vmc_image_is_writable(const struct vmc_image *img)
{
    return img->writable;
}

/* A data-path call on @img failed with @r: unless the layer that failed
 * recorded its reason since @seq (corruption, seal mismatch), record a
 * generic one for vmc_image_last_error(). Returns @r. */
static int
data_path_failed(struct vmc_image *img, int r, uint64_t seq, const char *what,
                 uint64_t off, uint64_t len)
{
    uint64_t newest = 0;

    image_last_error(img, NULL, 0, &newest);
    if (newest <= seq) {
        image_record_error(img, r, "'%s': %s of %" PRIu64 " bytes at offset "
                           "%" PRIu64 " failed: %s", img->filename, what, len,
                           off, strerror(-r));
    }
    return r;
}

/* Validate a request against the image size; 0 if fine. */
static int
check_request(const struct vmc_image *img, uint64_t off, uint64_t len)
{
    uint64_t end;

    if (!add_ok(off, len, &end) || end > img->size) {
        return -EINVAL;
    }
    return 0;
}

int
vmc_image_read(struct vmc_image *img, void *buf, uint64_t off, size_t len)
{
    int r = check_request(img, off, len);
    uint64_t seq;

    if (r || !len) {
        return r;
    }
    seq = image_error_seq();
    r = seal_verify(img, off, len);
    if (r == 0) {
        image_lock(img);
        r = img->ops->read(img, buf, off, len);
        image_unlock(img);
    }
    return r < 0 ? data_path_failed(img, r, seq, "read", off, len) : r;
}

/* The merged map of @b's view, built on first use; NULL when the chain
 * below may change (a writable layer) or the map was invalidated. */
static struct chain_map *
backing_map(struct vmc_image *b)
{
    struct chain_map *m;

    pthread_mutex_lock(&b->map_lock);
    if (b->map && !chain_map_is_current(b->map)) {
        b->map_unavailable = true;   /* a layer changed: stop using maps */
    }
    if (!b->map && !b->map_unavailable && !b->writable &&
        chain_map_new(&b->map, b) < 0) {
        b->map_unavailable = true;
    }
    m = b->map_unavailable ? NULL : b->map;
    pthread_mutex_unlock(&b->map_lock);
    return m;
}

/* backing_io.read: through the merged map of the backing when it has one. */
static int
chain_read_backing(struct vmc_image *img, void *buf, uint64_t off,
                   size_t len)
{
    struct vmc_image *b = img->backing;
    size_t n = 0;

    if (b && off < b->size) {
        struct chain_map *m = backing_map(b);
        int r;

        n = (size_t)MIN((uint64_t)len, b->size - off);
        r = m ? chain_map_read(m, buf, off, n) : vmc_image_read(b, buf, off, n);
        if (r < 0) {
            return r;
        }
    }
    if (n < len) {
        memset((uint8_t *)buf + n, 0, len - n);
    }
    return 0;
}

/* backing_io.is_zero: block status of each layer below, top down. */
static bool
chain_backing_is_zero(struct vmc_image *img, uint64_t off, uint64_t len)
{
    struct vmc_image *b = img->backing;

    while (b && len) {
        struct vmc_block_status bs;

        if (off >= b->size) {
            return true;
        }
        if (vmc_image_block_status(b, off, len, true, &bs) < 0) {
            return false;
        }
        if (!(bs.flags & VMC_BS_ZERO) && (bs.flags & VMC_BS_ALLOCATED)) {
            return false;
        }
        off += bs.length;
        len -= MIN(len, bs.length);
    }
    return true;
}

/* The way down the chain each layer's driver uses (format.h). */
static const struct format_backing_io chain_backing_io = {
    .read = chain_read_backing,
    .is_zero = chain_backing_is_zero,
};

static int
check_writable(const struct vmc_image *img)
{
    return img->writable ? 0 : -EROFS;
}

enum write_kind { WRITE_DATA, WRITE_ZEROES, WRITE_DISCARD };

/* The public write calls: validate the request, call the driver under the
 * layer lock (then flush for FUA), record a failure's reason. */
static int
write_request(struct vmc_image *img, enum write_kind kind, const void *buf,
              uint64_t off, uint64_t len, unsigned flags)
{
    static const char *const what[] = {
        [WRITE_DATA] = "write",
        [WRITE_ZEROES] = "write-zeroes",
        [WRITE_DISCARD] = "discard",
    };
    int r = check_writable(img);
    uint64_t seq;

    if (!r) {
        r = check_request(img, off, len);
    }
    if (r || !len) {
        return r;
    }
    seq = image_error_seq();
    image_lock(img);
    r = image_failed_state(img);
    if (r == 0 && kind == WRITE_DATA) {
        r = img->ops->write(img, buf, off, (size_t)len, flags);
    } else if (r == 0 && kind == WRITE_ZEROES) {
        r = img->ops->write_zeroes(img, off, len, flags);
    } else if (r == 0) {
        r = img->ops->discard(img, off, len);
    }
    if (!r && (flags & VMC_WRITE_FUA)) {
        r = img->ops->flush(img);
    }
    image_unlock(img);
    return r < 0 ? data_path_failed(img, r, seq, what[kind], off, len) : r;
}

int
vmc_image_write(struct vmc_image *img, const void *buf, uint64_t off,
                size_t len, unsigned flags)
{
    return write_request(img, WRITE_DATA, buf, off, len, flags);
}

int
vmc_image_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                       unsigned flags)
{
    return write_request(img, WRITE_ZEROES, NULL, off, len, flags);
}

int
vmc_image_discard(struct vmc_image *img, uint64_t off, uint64_t len)
{
    return write_request(img, WRITE_DISCARD, NULL, off, len, 0);
}

int
vmc_image_flush(struct vmc_image *img)
{
    int r;
    uint64_t seq;

    if (!img->writable) {
        return 0;
    }
    seq = image_error_seq();
    image_lock(img);
    r = flush_layer(img);
    image_unlock(img);
    return r < 0 ? data_path_failed(img, r, seq, "flush", 0, img->size) : r;
}

int
vmc_image_resize(struct vmc_image *img, uint64_t new_size,
                 struct vmc_error *err)
{
    int r;

    if (!img->writable) {
        return vmc_error_set(err, -EROFS, "'%s' is opened read-only",
                             img->filename);
    }
    image_lock(img);
    r = img->ops->resize(img, new_size, err);
    if (!r) {
        r = img->ops->flush(img);
        if (r) {
            vmc_error_set(err, r, "cannot flush '%s': %s", img->filename,
                          strerror(-r));
        }
    }
    image_unlock(img);
    return r;
}

static int
layer_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                   struct vmc_block_status *out)
{
    int r;

    image_lock(img);
    r = img->ops->block_status(img, off, len, out);
    image_unlock(img);
    if (!r && (out->length == 0 || out->length > len)) {
        r = -EIO;
    }
    return r;
}

int
vmc_image_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                       bool whole_chain, struct vmc_block_status *out)
{
    struct vmc_image *layer = img;
    unsigned depth = 0;
    int r;

    if (off >= img->size) {
        return -EINVAL;
    }
    len = MIN(len, img->size - off);
    for (;;) {
        r = layer_block_status(layer, off, len, out);
        if (r < 0) {
            return r;
        }
        out->depth = depth;
        if (out->flags & VMC_BS_ALLOCATED) {
            out->layer = layer;
            return 0;
        }
        out->layer = NULL;
        if (!whole_chain || !layer->backing) {
            /* Defined nowhere: reads as zeros (a host offset, if the
             * layer reported one, is kept for map). */
            out->flags = VMC_BS_ZERO | (layer->backing || !whole_chain ? 0 :
                                        (out->flags & VMC_BS_OFFSET));
            return 0;
        }
        len = out->length;
        layer = layer->backing;
        depth++;
        if (off >= layer->size) {
            /* Past the end of a shorter backing file: zeros. */
            out->flags = VMC_BS_ZERO;
            out->length = len;
            return 0;
        }
        len = MIN(len, layer->size - off);
    }
}

void
vmc_image_get_info(const struct vmc_image *img, struct vmc_image_info *info)
{
    memset(info, 0, sizeof(*info));
    info->format = img->ops->format;
    info->virtual_size = img->size;
    if (img->file) {        /* none: an image outside host files */
        hio_length(img->file, &info->file_length);
        hio_allocated_bytes(img->file, &info->actual_size);
    }
    info->backing_file = img->backing_name;
    info->backing_format = img->backing_fmt;
    info->backing_path = img->backing_path;
    if (img->ops->get_info) {
        img->ops->get_info(img, info);
    }
}

int
vmc_image_check(struct vmc_image *img, unsigned repair,
                struct vmc_check_result *res, vmc_check_report_fn report,
                void *opaque, struct vmc_error *err)
{
    int r;

    memset(res, 0, sizeof(*res));
    if (!img->ops->check) {
        return vmc_error_set(err, -ENOTSUP, "This image format does not "
                             "support checks");
    }
    if (repair && !img->writable) {
        return vmc_error_set(err, -EROFS, "repair needs a read-write open");
    }
    image_lock(img);
    r = img->ops->check(img, repair, res, report, opaque, err);
    image_unlock(img);
    return r;
}

uint64_t
vmc_image_cluster_size(const struct vmc_image *img)
{
    return img->ops->granularity ? img->ops->granularity(img) : 4096;
}

int
vmc_image_set_backing(struct vmc_image *img, const char *name,
                      const char *fmt, struct vmc_error *err)
{
    int r;

    if (!img->writable) {
        return vmc_error_set(err, -EROFS, "'%s' is opened read-only",
                             img->filename);
    }
    if (name && !*name) {
        name = NULL;
    }
    if (name && (!fmt || vmc_format_from_name(fmt) == VMC_FMT_AUTO)) {
        return vmc_error_set(err, -EINVAL, "backing format must be "
                             "specified (qcow2 or raw)");
    }
    if (name && strlen(name) > 1023) {
        return vmc_error_set(err, -EINVAL, "backing file name too long "
                             "(more than 1023 bytes)");
    }
    if (name && is_protocol_name(name)) {
        return vmc_error_set(err, -EINVAL, "backing file name '%s' is not a "
                             "plain path", name);
    }
    if (!img->ops->set_backing) {
        return vmc_error_set(err, -ENOTSUP, "format '%s' has no backing "
                             "files", img->ops->name);
    }
    image_lock(img);
    r = img->ops->flush(img);
    if (r < 0) {
        vmc_error_set(err, r, "cannot flush '%s': %s", img->filename,
                      strerror(-r));
    } else {
        uint8_t seal[SEAL_PARENT_EXT_LEN];
        bool sealed = name && seal_parent_ext_of(img->filename, name,
                                                 vmc_format_from_name(fmt),
                                                 seal) == 1;

        r = img->ops->set_backing(img, name, name ? fmt : NULL,
                                  sealed ? seal : NULL, err);
    }
    image_unlock(img);
    return r;
}

int
vmc_image_make_empty(struct vmc_image *img, struct vmc_error *err)
{
    int r;

    if (!img->writable) {
        return vmc_error_set(err, -EROFS, "'%s' is opened read-only",
                             img->filename);
    }
    if (!img->ops->make_empty) {
        return vmc_error_set(err, -ENOTSUP, "format '%s' cannot be emptied",
                             img->ops->name);
    }
    image_lock(img);
    r = img->ops->make_empty(img, err);
    if (!r) {
        r = img->ops->flush(img);
    }
    image_unlock(img);
    return r;
}

int
vmc_image_write_compressed(struct vmc_image *img, const void *buf,
                           uint64_t offset, size_t len)
{
    int r = check_writable(img);

    if (!r) {
        r = check_request(img, offset, len);
    }
    if (r) {
        return r;
    }
    if (!img->ops->write_compressed) {
        return -ENOTSUP;
    }
    image_lock(img);
    r = image_failed_state(img);
    if (r == 0) {
        r = img->ops->write_compressed(img, buf, offset, len);
    }
    image_unlock(img);
    return r;
}

int
vmc_image_reopen_rw(struct vmc_image *layer, struct vmc_error *err)
{
    struct hio_file *nf = NULL;
    struct hio_file *old;
    void *old_priv;
    int r;

    if (layer->writable) {
        return 0;
    }
    if (layer->shared && layer->refcnt > 1) {
        return vmc_error_set(err, -EBUSY, "'%s' is also used by another "
                             "image open in this process", layer->filename);
    }
    /* Maps of the chains above this layer assumed it never changes. */
    chain_map_invalidate_all();
    image_lock(layer);
    r = hio_open(&nf, layer->filename, O_RDWR, 0);
    if (r < 0) {
        image_unlock(layer);
        return vmc_error_set(err, r, "could not open '%s' read-write: %s",
                             layer->filename, strerror(-r));
    }
    /* Drop our own shared lock first: it would conflict with ours. */
    old = layer->file;
    old_priv = layer->priv;
    layer->ops->close(layer);
    hio_close(old);
    layer->file = nf;
    layer->writable = true;
    layer->priv = NULL;
    if (!(layer->open_flags & VMC_OPEN_FORCE_SHARE)) {
        r = lock_layer(layer, false, err);
    }
    if (!r) {
        char *bn = layer->backing_name, *bf = layer->backing_fmt;

        layer->backing_name = layer->backing_fmt = NULL;
        r = layer->ops->open(layer, layer->open_flags | VMC_OPEN_RDWR, err);
        free(layer->backing_name);
        free(layer->backing_fmt);
        layer->backing_name = bn;
        layer->backing_fmt = bf;
    }
    (void)old_priv;
    if (r < 0) {
        /* Leave the layer usable read-only is not possible any more:
         * mark it unwritable; reads will fail cleanly. */
        layer->writable = false;
    } else {
        layer->open_flags |= VMC_OPEN_RDWR;
    }
    image_unlock(layer);
    return r;
}
