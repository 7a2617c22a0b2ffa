/*
 * qcow2-header.c - writing cluster 0: serialising the header with its
 * extensions and backing name, rewriting the mutable fields and feature
 * bits in place, the corrupt bit, and changing the backing reference or
 * a header extension (one durable header write each).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

/* Feature-name table we write (qcow2 spec "Feature name table"). */
static const struct {
    uint8_t type, bit;
    const char *name;
} feature_names[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

/* ------------------------------------------------------------ header I/O */

/* Serialise the whole of cluster 0 (header, extensions, backing name). */
static int
build_header_layout(const struct qcow2_state *s, const char *backing_name,
                    const char *backing_fmt, uint64_t size, uint8_t *buf,
                    size_t cap, size_t *used, bool with_features)
{
    size_t hlen = s->version >= 3 ? s->header_length : 72;
    size_t pos;
    unsigned i;

    if (hlen > cap) {
        return -ENOSPC;
    }
    memset(buf, 0, cap);
    be32_store(buf + 0, QCOW2_MAGIC);
    be32_store(buf + 4, s->version);
    be32_store(buf + 20, s->cluster_bits);
    be64_store(buf + 24, size);
    be32_store(buf + 32, (uint32_t)s->crypt_method);
    be32_store(buf + 36, s->l1_size);
    be64_store(buf + 40, s->l1_offset);
    be64_store(buf + 48, s->reftable_offset);
    be32_store(buf + 56, s->reftable_clusters);
    be32_store(buf + 60, s->nb_snapshots);
    be64_store(buf + 64, s->snapshots_offset);
    if (s->version >= 3) {
        be64_store(buf + 72, s->incompat);
        be64_store(buf + 80, s->compat);
        be64_store(buf + 88, s->autoclear);
        be32_store(buf + 96, s->refcount_order);
        be32_store(buf + 100, (uint32_t)hlen);
        if (hlen > 104) {
            buf[104] = (uint8_t)s->compression_type;
        }
        if (s->extra_header_len) {
            memcpy(buf + 112, s->extra_header, s->extra_header_len);
        }
    }
    pos = hlen;

#define NEED(n) do { if (pos + (n) > cap) { return -ENOSPC; } } while (0)
    if (backing_name && backing_fmt) {
        size_t n = strlen(backing_fmt);
        NEED(8 + align_up(n, 8));
        be32_store(buf + pos, QCOW2_EXT_BACKING_FMT);
        be32_store(buf + pos + 4, (uint32_t)n);
        memcpy(buf + pos + 8, backing_fmt, n);
        pos += 8 + align_up(n, 8);
    }
    if (s->version >= 3 && with_features) {
        size_t n = ARRAY_SIZE(feature_names) * 48;
        NEED(8 + n);
        be32_store(buf + pos, QCOW2_EXT_FEATURE_TABLE);
        be32_store(buf + pos + 4, (uint32_t)n);
        for (i = 0; i < ARRAY_SIZE(feature_names); i++) {
            uint8_t *e = buf + pos + 8 + i * 48;
            e[0] = feature_names[i].type;
            e[1] = feature_names[i].bit;
            memcpy(e + 2, feature_names[i].name,
                   strlen(feature_names[i].name));
        }
        pos += 8 + n;
    }
    for (i = 0; i < s->nexts; i++) {
        NEED(8 + align_up(s->exts[i].len, 8));
        be32_store(buf + pos, s->exts[i].type);
        be32_store(buf + pos + 4, s->exts[i].len);
        memcpy(buf + pos + 8, s->exts[i].data, s->exts[i].len);
        pos += 8 + align_up(s->exts[i].len, 8);
    }
    NEED(8);
    pos += 8;   /* end-of-extensions marker: type 0, length 0 */
    if (backing_name) {
        size_t n = strlen(backing_name);
        NEED(n);
        be64_store(buf + 8, pos);
        be32_store(buf + 16, (uint32_t)n);
        memcpy(buf + pos, backing_name, n);
        pos += n;
    }
#undef NEED
    *used = pos;
    return 0;
}

/* Serialise cluster 0; the feature-name table (only used for error
 * messages) is left out when it does not fit, as QEMU does with small
 * clusters. */
int
qcow2_build_header(const struct qcow2_state *s, const char *backing_name,
                   const char *backing_fmt, uint64_t size, uint8_t *buf,
                   size_t cap, size_t *used)
{
    int r = build_header_layout(s, backing_name, backing_fmt, size, buf, cap,
                                used, true);

    if (r == -ENOSPC) {
        r = build_header_layout(s, backing_name, backing_fmt, size, buf, cap,
                                used, false);
    }
    return r;
}

/* Rewrite the mutable header fields in place (L1, refcount table, size,
 * feature bits). */
int
qcow2_write_header_fields(struct qcow2_state *s)
{
    uint8_t buf[96];
    int r = fmt_event(s->l1_old_offset ? FMT_EV_L1_GROW_ACTIVATE_TABLE
                                       : FMT_EV_HEADER_UPDATE);

    if (r < 0) {
        return r;
    }
    be64_store(buf + 0, s->img->size);            /* offset 24 */
    be32_store(buf + 8, (uint32_t)s->crypt_method);
    be32_store(buf + 12, s->l1_size);
    be64_store(buf + 16, s->l1_offset);
    be64_store(buf + 24, s->reftable_offset);
    be32_store(buf + 32, s->reftable_clusters);
    r = hio_pwrite(s->f, buf, 36, 24);
    if (r < 0 || s->version < 3) {
        return r;
    }
    be64_store(buf, s->incompat);
    be64_store(buf + 8, s->compat);
    be64_store(buf + 16, s->autoclear);
    return hio_pwrite(s->f, buf, 24, 72);
}

int
qcow2_set_incompat(struct qcow2_state *s, uint64_t bits, bool on)
{
    uint8_t buf[8];
    int r;

    if (s->version < 3) {
        return 0;
    }
    s->incompat = on ? (s->incompat | bits) : (s->incompat & ~bits);
    be64_store(buf, s->incompat);
    r = hio_pwrite(s->f, buf, 8, 72);
    if (r == 0) {
        r = hio_sync(s->f);
    }
    return r;
}

int
qcow2_mark_corrupt(struct qcow2_state *s, uint64_t offset, const char *fmt,
                   ...)
{
    va_list ap;

    if (!s->corrupt) {
        va_start(ap, fmt);
        vsnprintf(s->corrupt_reason, sizeof(s->corrupt_reason), fmt, ap);
        va_end(ap);
        s->corrupt_offset = offset;
        s->corrupt = true;
        if (s->img->writable) {
            qcow2_set_incompat(s, QCOW2_INCOMPAT_CORRUPT, true);
        }
    }
    return qcow2_corrupt_refusal(s);
}

int
qcow2_corrupt_refusal(struct qcow2_state *s)
{
    if (s->corrupt_offset == QCOW2_NO_OFFSET) {
        image_record_error(s->img, -EUCLEAN, "'%s' is corrupt: %s",
                           s->img->filename, s->corrupt_reason);
    } else {
        image_record_error(s->img, -EUCLEAN, "'%s' is corrupt: %s (offset "
                           "0x%" PRIx64 ")", s->img->filename,
                           s->corrupt_reason, s->corrupt_offset);
    }
    return -EUCLEAN;
}

/* ------------------------------------------------------------ set_backing */

/* Rewrite cluster 0 with the given backing reference and the current
 * extensions, in one write, then make it durable. */
static int
rewrite_header(struct qcow2_state *s, const char *name, const char *fmt,
               struct vmc_error *err)
{
    struct vmc_image *img = s->img;
    uint8_t *buf;
    size_t used;
    int r;

    buf = malloc(s->cluster_size);
    if (!buf) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = qcow2_build_header(s, name, fmt, img->size, buf, s->cluster_size,
                           &used);
    if (r < 0) {
        free(buf);
        return vmc_error_set(err, r, "'%s': the header extensions and the "
                             "backing file name do not fit in cluster 0",
                             img->filename);
    }
    r = hio_pwrite(s->f, buf, used, 0);
    if (r == 0) {
        r = hio_sync(s->f);
    }
    free(buf);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot write header of '%s': %s",
                             img->filename, strerror(-r));
    }
    return 0;
}

/* How to undo one ext_change(). */
struct ext_undo {
    struct qcow2_ext *e;     /* the slot changed, NULL if nothing was */
    struct qcow2_ext saved;  /* its former content */
    bool added, removed;
};

/*
 * Replace, add or (@data NULL) remove extension @type in memory only; the
 * caller rewrites the header, then calls ext_keep() or, if that failed,
 * ext_restore().
 */
static int
ext_change(struct qcow2_state *s, uint32_t type, const void *data,
           size_t len, struct ext_undo *u)
{
    struct qcow2_ext *e = NULL;
    unsigned i;

    memset(u, 0, sizeof(*u));
    for (i = 0; i < s->nexts; i++) {
        if (s->exts[i].type == type) {
            e = &s->exts[i];
        }
    }
    if (!e && !data) {
        return 0;   /* removing an absent extension */
    }
    if (!e) {
        e = realloc(s->exts, (s->nexts + 1) * sizeof(*s->exts));
        if (!e) {
            return -ENOMEM;
        }
        s->exts = e;
        e = &s->exts[s->nexts];
        memset(e, 0, sizeof(*e));
        e->type = type;
        u->added = true;
    }
    u->saved = *e;
    if (data) {
        uint8_t *copy = malloc(len ? len : 1);

        if (!copy) {
            return -ENOMEM;
        }
        memcpy(copy, data, len);
        e->data = copy;
        e->len = (uint32_t)len;
        s->nexts += u->added;
    } else {
        /* Remove: move the last one into its place. */
        *e = s->exts[--s->nexts];
        u->removed = true;
    }
    u->e = e;
    return 0;
}

static void
ext_restore(struct qcow2_state *s, struct ext_undo *u)
{
    if (!u->e) {
        return;
    }
    if (u->removed) {
        s->exts[s->nexts++] = *u->e;
        *u->e = u->saved;
        return;
    }
    free(u->e->data);
    *u->e = u->saved;
    s->nexts -= u->added;
}

static void
ext_keep(struct ext_undo *u)
{
    if (u->e && !u->added) {
        free(u->saved.data);
    }
}

/* Rewrite the backing reference and, in the same header write, the
 * parent-seal extension: @parent_seal (the new backing file's seal) or
 * none, so that the record never names the seal of a former parent. */
int
qcow2_set_backing(struct vmc_image *img, const char *name, const char *fmt,
                  const uint8_t *parent_seal, struct vmc_error *err)
{
    struct qcow2_state *s = qcow2_s(img);
    struct ext_undo u;
    int r;

    if (ext_change(s, FORMAT_PARENT_SEAL_EXT, parent_seal,
                   FORMAT_PARENT_SEAL_LEN, &u) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = rewrite_header(s, name, fmt, err);
    if (r < 0) {
        ext_restore(s, &u);
        return r;
    }
    ext_keep(&u);
    free(img->backing_name);
    free(img->backing_fmt);
    img->backing_name = name ? strdup(name) : NULL;
    img->backing_fmt = fmt ? strdup(fmt) : NULL;
    return 0;
}

/* ------------------------------------------------------ extension access */

int
qcow2_get_ext(const struct vmc_image *img, uint32_t type, void *buf,
              size_t cap, size_t *len)
{
    const struct qcow2_state *s = qcow2_s(img);
    unsigned i;

    for (i = 0; i < s->nexts; i++) {
        if (s->exts[i].type == type) {
            *len = s->exts[i].len;
            memcpy(buf, s->exts[i].data, MIN(cap, (size_t)s->exts[i].len));
            return 0;
        }
    }
    return -ENOENT;
}

int
qcow2_set_ext(struct vmc_image *img, uint32_t type, const void *data,
              size_t len, struct vmc_error *err)
{
    struct qcow2_state *s = qcow2_s(img);
    struct ext_undo u;
    int r;

    if (ext_change(s, type, data, len, &u) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (!u.e) {
        return 0;   /* nothing to remove */
    }
    r = rewrite_header(s, img->backing_name, img->backing_fmt, err);
    if (r < 0) {
        ext_restore(s, &u);
        return r;
    }
    ext_keep(&u);
    return 0;
}
