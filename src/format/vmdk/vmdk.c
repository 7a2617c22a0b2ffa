/*
 * vmdk.c - the VMDK format driver (read-only): open a hosted sparse file
 * (monolithicSparse, streamOptimized, a delta disk) or a text descriptor
 * with its extent files (monolithicFlat, twoGbMaxExtent{Sparse,Flat}),
 * and serve reads and block status over the extents. A delta disk's
 * parentFileNameHint becomes the layer's backing name (format vmdk), so
 * the chain resolves it under the same rules as a qcow2 backing file.
 * Extent names are confined to the descriptor's directory: no absolute
 * names, no "..", no symlink leading out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/vmdk/vmdk.h"
#include "util/util.h"

static struct vmdk_state *
vmdk_s(const struct vmc_image *img)
{
    return img->priv;
}

/* The create types whose extents this driver reads. */
static bool
known_create_type(const char *t)
{
    static const char *const types[] = {
        "monolithicSparse", "streamOptimized", "monolithicFlat",
        "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "vmfs",
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(types); i++) {
        if (!strcmp(t, types[i])) {
            return true;
        }
    }
    return false;
}

/* Is @name a plain relative name without a ".." component? */
static bool
confined_name(const char *name)
{
    const char *p = name;

    if (!*name || name[0] == '/') {
        return false;
    }
    while (*p) {
        size_t n = strcspn(p, "/");

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            return false;
        }
        p += n;
        p += *p == '/';
    }
    return true;
}

/* The directory part of @path ("." when none), newly allocated. */
static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        return strdup(".");
    }
    return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Open extent file @name next to @img's descriptor, confined to its
 * directory (symlinks resolved). */
static int
open_extent_file(struct vmc_image *img, struct vmdk_extent *e,
                 const char *name, struct vmc_error *err)
{
    char *dir = dir_of(img->filename), *rdir = NULL, *real = NULL;
    const char *kind = NULL;
    size_t dl;
    int r = 0;

    if (!confined_name(name)) {
        r = vmc_error_set(err, -EPERM, "'%s': extent file name '%s' is "
                          "refused (absolute names and '..' are not "
                          "followed)", img->filename, name);
    } else if (!dir || (strchr(img->filename, '/')
                        ? asprintf(&e->path, "%s/%s", dir, name)
                        : asprintf(&e->path, "%s", name)) < 0) {
        e->path = NULL;
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0 && (!(rdir = realpath(dir, NULL)) ||
                   !(real = realpath(e->path, NULL)))) {
        r = vmc_error_set(err, -errno, "'%s': extent '%s': %s",
                          img->filename, name, strerror(errno));
    }
    dl = rdir ? strlen(rdir) : 0;
    if (r == 0 && (strncmp(real, rdir, dl) ||
                   (real[dl] != '/' && !(dl == 1 && rdir[0] == '/')))) {
        r = vmc_error_set(err, -EPERM, "'%s': extent '%s' resolves to '%s', "
                          "outside '%s': refused", img->filename, name, real,
                          rdir);
    }
    if (r == 0) {
        r = hio_open_image(&e->file, e->path, O_RDONLY, false, &kind);
        if (r < 0) {
            vmc_error_set(err, r, "'%s': cannot open extent '%s': %s",
                          img->filename, e->path,
                          kind ? kind : strerror(-r));
        }
        e->own_file = r == 0;
    }
    free(dir);
    free(rdir);
    free(real);
    return r;
}

/* Open the extents a text descriptor lists. */
static int
open_desc_extents(struct vmc_image *img, struct vmdk_state *s,
                  const struct vmdk_desc *d, struct vmc_error *err)
{
    uint64_t start = 0;
    size_t i;
    int r = 0;

    s->extents = calloc(d->n_extents, sizeof(*s->extents));
    if (!s->extents) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; r == 0 && i < d->n_extents; i++) {
        const struct vmdk_desc_extent *x = &d->extents[i];
        struct vmdk_extent *e = &s->extents[i];

        s->n_extents++;
        e->type = x->type;
        e->start = start;
        e->length = x->sectors * VMDK_SECTOR;
        if (!add_ok(start, e->length, &start) || start > (1ull << 63)) {
            return vmc_error_set(err, -EUCLEAN, "'%s': the extents add up "
                                 "to more than 2^63 bytes", img->filename);
        }
        if (x->type == VMDK_EXTENT_ZERO) {
            continue;
        }
        r = open_extent_file(img, e, x->name, err);
        if (r == 0 && x->type == VMDK_EXTENT_FLAT) {
            e->flat_offset = x->offset * VMDK_SECTOR;
            r = hio_length(e->file, &e->file_length);
        } else if (r == 0) {
            r = vmdk_sparse_open(e, img->table_budget - MIN(img->table_budget,
                                 img->table_bytes), &img->table_bytes, NULL,
                                 err);
            if (r == 0 && e->capacity < e->length) {
                r = vmc_error_set(err, -EUCLEAN, "'%s': extent '%s' holds "
                                  "%" PRIu64 " bytes, the descriptor says %"
                                  PRIu64, img->filename, e->path,
                                  e->capacity, e->length);
            }
        }
    }
    img->size = start;
    return r;
}

/* A hosted sparse file: one extent, the file itself; its embedded
 * descriptor (if any) gives the create type and the parent. */
static int
open_monolithic(struct vmc_image *img, struct vmdk_state *s,
                struct vmdk_desc *d, struct vmc_error *err)
{
    struct vmdk_extent *e = calloc(1, sizeof(*e));
    int r;

    if (!e) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    s->extents = e;
    s->n_extents = 1;
    e->type = VMDK_EXTENT_SPARSE;
    e->file = img->file;
    e->path = strdup(img->filename);
    if (!e->path) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = vmdk_sparse_open(e, img->table_budget, &img->table_bytes, d, err);
    e->length = e->capacity;
    img->size = e->capacity;
    return r;
}

static int
read_text_desc(struct vmc_image *img, struct vmdk_desc *d,
               struct vmc_error *err)
{
    uint64_t len;
    char *text;
    int r = hio_length(img->file, &len);

    if (r == 0 && len > VMDK_MAX_DESC) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VMDK descriptor file "
                             "larger than %u bytes", img->filename,
                             VMDK_MAX_DESC);
    }
    text = r == 0 ? malloc(len + 1) : NULL;
    if (r == 0 && !text) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        r = hio_pread(img->file, text, len, 0);
    }
    if (r < 0) {
        free(text);
        return vmc_error_set(err, r, "'%s': %s", img->filename,
                             strerror(-r));
    }
    r = vmdk_desc_parse(text, len, img->filename, d, err);
    free(text);
    if (r == 0 && !d->n_extents) {
        r = vmc_error_set(err, -EUCLEAN, "'%s': VMDK descriptor lists no "
                          "extent", img->filename);
    }
    return r;
}

/* Take the create type and the parent link from the descriptor. */
static int
apply_desc(struct vmc_image *img, struct vmdk_state *s, struct vmdk_desc *d,
           struct vmc_error *err)
{
    const char *t = d->create_type ? d->create_type : "monolithicSparse";

    if (!known_create_type(t)) {
        return vmc_error_set(err, -ENOTSUP, "'%s': VMDK create type '%s' is "
                             "not supported: convert it with 'qemu-img "
                             "convert -O qcow2'", img->filename, t);
    }
    s->create_type = strdup(t);
    if (!s->create_type) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (d->parent_hint && d->parent_cid != UINT32_MAX) {
        img->backing_name = d->parent_hint;
        d->parent_hint = NULL;
        img->backing_fmt = strdup("vmdk");
        if (!img->backing_fmt) {
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
    }
    return 0;
}

static void vmdk_close(struct vmc_image *img);

static int
vmdk_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    struct vmdk_state *s;
    struct vmdk_desc d = { 0 };
    uint8_t magic[4];
    int r;

    if (flags & VMC_OPEN_RDWR) {
        return vmc_error_set(err, -EROFS, "'%s': VMDK images are read-only "
                             "here (convert to qcow2 to write)",
                             img->filename);
    }
    s = img->priv = calloc(1, sizeof(*s));
    if (!s) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = hio_pread(img->file, magic, sizeof(magic), 0);
    if (r < 0) {
        r = vmc_error_set(err, r, "'%s': %s", img->filename, strerror(-r));
    } else if (!memcmp(magic, "KDMV", 4) || !memcmp(magic, "COWD", 4)) {
        r = open_monolithic(img, s, &d, err);
    } else {
        r = read_text_desc(img, &d, err);
        if (r == 0) {
            r = open_desc_extents(img, s, &d, err);
        }
    }
    if (r == 0) {
        r = apply_desc(img, s, &d, err);
    }
    vmdk_desc_free(&d);
    if (r < 0) {
        vmdk_close(img);
    }
    return r;
}

static void
vmdk_close(struct vmc_image *img)
{
    struct vmdk_state *s = vmdk_s(img);
    size_t i;

    if (!s) {
        return;
    }
    for (i = 0; i < s->n_extents; i++) {
        struct vmdk_extent *e = &s->extents[i];

        if (e->type == VMDK_EXTENT_SPARSE) {
            vmdk_sparse_close(e);
        }
        if (e->own_file) {
            hio_close(e->file);
        }
        free(e->path);
    }
    free(s->extents);
    free(s->create_type);
    vmdk_sparse_end(s);
    free(s->grain_buf);
    free(s->comp_buf);
    free(s);
    img->priv = NULL;
}

/* The extent holding guest byte @off (binary search; @off < size). */
static struct vmdk_extent *
find_extent(struct vmdk_state *s, uint64_t off)
{
    size_t lo = 0, hi = s->n_extents;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->extents[mid].start <= off) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return &s->extents[lo];
}

/* Record why the data path refused the damaged extent @e. */
static int
damaged(struct vmc_image *img, const struct vmdk_extent *e, uint64_t off,
        int r)
{
    if (r == -EUCLEAN) {
        image_record_error(img, r, "'%s': damaged VMDK extent '%s': a grain "
                           "table entry for guest offset %" PRIu64 " points "
                           "outside the file, at its metadata, or at a bad "
                           "compressed grain", img->filename, e->path, off);
    }
    return r;
}

/* Read within one grain (sparse) or one extent. */
static int
read_piece(struct vmc_image *img, struct vmdk_extent *e, void *buf,
           uint64_t off, size_t len)
{
    uint64_t rel = off - e->start;
    uint32_t entry;
    int r;

    if (e->type == VMDK_EXTENT_ZERO) {
        memset(buf, 0, len);
        return 0;
    }
    if (e->type == VMDK_EXTENT_FLAT) {
        return hio_pread(e->file, buf, len, e->flat_offset + rel);
    }
    r = vmdk_sparse_lookup(e, rel, &entry);
    if (r < 0) {
        return damaged(img, e, off, r);
    }
    if (entry == 0) {
        return format_read_backing(img, buf, off, len);
    }
    if (entry == 1 && e->zero_grain) {
        memset(buf, 0, len);
        return 0;
    }
    r = vmdk_sparse_read(vmdk_s(img), e, buf, rel, len, entry);
    return r < 0 ? damaged(img, e, off, r) : 0;
}

static int
vmdk_read(struct vmc_image *img, void *buf, uint64_t off, size_t len)
{
    struct vmdk_state *s = vmdk_s(img);
    uint8_t *p = buf;

    while (len) {
        struct vmdk_extent *e = find_extent(s, off);
        uint64_t n = MIN(len, e->start + e->length - off);
        int r;

        if (e->type == VMDK_EXTENT_SPARSE) {
            n = MIN(n, e->grain - (off - e->start) % e->grain);
        }
        r = read_piece(img, e, p, off, (size_t)n);
        if (r < 0) {
            return r;
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Status of one grain of sparse extent @e at guest offset @off. */
static int
grain_status(struct vmc_image *img, struct vmdk_extent *e, uint64_t off,
             uint64_t len, struct vmc_block_status *out)
{
    uint64_t rel = off - e->start;
    uint32_t entry;
    int r = vmdk_sparse_lookup(e, rel, &entry);

    if (r < 0) {
        return damaged(img, e, off, r);
    }
    out->length = MIN(len, e->grain - rel % e->grain);
    if (!e->gd[rel / e->gt_cover]) {
        /* no grain table: the whole table's span is unallocated */
        out->length = MIN(len, e->gt_cover - rel % e->gt_cover);
        out->flags = 0;
    } else if (entry == 0) {
        out->flags = 0;
    } else if (entry == 1 && e->zero_grain) {
        out->flags = VMC_BS_ALLOCATED | VMC_BS_ZERO;
    } else if (e->compressed) {
        out->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_COMPRESSED;
    } else {
        out->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_OFFSET;
        out->host_offset = (uint64_t)entry * VMDK_SECTOR + rel % e->grain;
    }
    return 0;
}

/* A flat extent is all data; its file's holes read as zeros (reported
 * as qemu-img does: data and zero). */
static int
flat_status(struct vmdk_extent *e, uint64_t off, uint64_t len,
            struct vmc_block_status *out)
{
    uint64_t host = e->flat_offset + (off - e->start), run = 0;
    bool is_data = true;
    int r = 0;

    if (host < e->file_length) {
        r = hio_data_run(e->file, host, MIN(len, e->file_length - host),
                         &is_data, &run);
    }
    out->length = run ? run : len;
    out->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_OFFSET |
                 (is_data ? 0 : VMC_BS_ZERO);
    out->host_offset = host;
    return r;
}

static int
vmdk_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                  struct vmc_block_status *out)
{
    struct vmdk_extent *e = find_extent(vmdk_s(img), off);
    struct vmc_block_status next;
    uint64_t end;
    int r;

    memset(out, 0, sizeof(*out));
    len = MIN(len, e->start + e->length - off);
    if (e->type == VMDK_EXTENT_ZERO) {
        out->length = len;
        out->flags = VMC_BS_ALLOCATED | VMC_BS_ZERO;
        return 0;
    }
    if (e->type == VMDK_EXTENT_FLAT) {
        return flat_status(e, off, len, out);
    }
    r = grain_status(img, e, off, len, out);
    /* merge the following grains of the same kind (contiguous data) */
    for (end = off + out->length; r == 0 && end < off + len;
         end += next.length) {
        memset(&next, 0, sizeof(next));
        r = grain_status(img, e, end, off + len - end, &next);
        if (r < 0 || next.flags != out->flags ||
            ((out->flags & VMC_BS_OFFSET) &&
             next.host_offset != out->host_offset + out->length)) {
            break;
        }
        out->length += next.length;
    }
    return r < 0 && out->length == 0 ? r : 0;
}

static int
vmdk_write(struct vmc_image *img, const void *buf, uint64_t off, size_t len,
           unsigned flags)
{
    return -EROFS;
}

static int
vmdk_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                  unsigned flags)
{
    return -EROFS;
}

static int
vmdk_discard(struct vmc_image *img, uint64_t off, uint64_t len)
{
    return -EROFS;
}

static int
vmdk_flush(struct vmc_image *img)
{
    return 0;
}

static int
vmdk_resize(struct vmc_image *img, uint64_t new_size, struct vmc_error *err)
{
    return vmc_error_set(err, -ENOTSUP, "'%s': VMDK images cannot be "
                         "resized here (convert to qcow2 first)",
                         img->filename);
}

static void
vmdk_get_info(const struct vmc_image *img, struct vmc_image_info *info)
{
    const struct vmdk_state *s = vmdk_s(img);

    if (s->n_extents && s->extents[0].type == VMDK_EXTENT_SPARSE) {
        info->cluster_size = (unsigned)s->extents[0].grain;
    }
    info->subformat = s->create_type;
}

static uint64_t
vmdk_granularity(const struct vmc_image *img)
{
    const struct vmdk_state *s = vmdk_s(img);

    if (s->n_extents && s->extents[0].type == VMDK_EXTENT_SPARSE) {
        return s->extents[0].grain;
    }
    return 65536;
}

/* Read-only: the data path's write calls all refuse with -EROFS. */
const struct format_ops vmdk_ops = {
    .name = "vmdk", .format = VMC_FMT_VMDK,
    .open = vmdk_open, .close = vmdk_close,
    .read = vmdk_read, .block_status = vmdk_block_status,
    .write = vmdk_write, .write_zeroes = vmdk_write_zeroes,
    .discard = vmdk_discard, .flush = vmdk_flush,
    .resize = vmdk_resize, .get_info = vmdk_get_info,
    .granularity = vmdk_granularity,
};
