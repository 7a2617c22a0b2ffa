/*
 * qcow2.c - qcow2 driver: create, flush ordering, resize, info and the
 * driver table (opening is in qcow2-open.c, header writes in
 * qcow2-header.c).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

/* ------------------------------------------------------------------ flush */

static int
write_l1(struct qcow2_state *s)
{
    size_t n = (size_t)s->l1_size * 8;
    uint8_t *buf;
    uint32_t i;
    int r;

    assert(s->flush_step == QCOW2_FLUSH_L2);
    if (!n) {
        return 0;
    }
    r = fmt_event(s->l1_old_offset ? FMT_EV_L1_GROW_WRITE_TABLE
                                   : FMT_EV_L1_UPDATE);
    if (r < 0) {
        return r;
    }
    if (!s->l1_old_offset) {
        /* updated in place: the table must already lie in the file (a
         * damaged header's offset must not grow it by terabytes) */
        bool past = false;

        r = qcow2_past_eof(s, s->l1_offset + n - 1, &past);
        if (r == 0 && past) {
            r = qcow2_mark_corrupt(s, s->l1_offset, "L1 table at 0x%" PRIx64
                                   " lies past the end of the file",
                                   s->l1_offset);
        }
        if (r < 0) {
            return r;
        }
    }
    buf = malloc(n);
    if (!buf) {
        return -ENOMEM;
    }
    for (i = 0; i < s->l1_size; i++) {
        be64_store(buf + (size_t)i * 8, s->l1[i]);
    }
    r = hio_pwrite(s->f, buf, n, s->l1_offset);
    free(buf);
    return r;
}

int
qcow2_sync(struct qcow2_state *s)
{
    int r = fmt_event(FMT_EV_FLUSH);

    return r < 0 ? r : hio_sync(s->f);
}

/* The steps of the write-ordering notes in qcow2.h, in order. */
static int
flush_steps(struct qcow2_state *s)
{
    int r;

    r = qcow2_refcount_flush_blocks(s);        /* step 1 */
    if (r < 0) {
        return r;
    }
    s->flush_step = QCOW2_FLUSH_REFCOUNTS;
    r = qcow2_sync(s);                         /* step 2 */
    if (r < 0) {
        return r;
    }
    s->flush_step = QCOW2_FLUSH_DATA_SYNCED;
    r = qcow2_flush_l2(s);                     /* step 3 */
    if (r < 0) {
        return r;
    }
    if (s->l1_dirty || s->header_dirty) {
        r = qcow2_sync(s);
        s->flush_step = QCOW2_FLUSH_L2;
        if (r == 0 && s->l1_dirty) {
            r = write_l1(s);
        }
        if (r == 0 && s->header_dirty) {
            r = qcow2_sync(s);
            if (r == 0) {
                r = qcow2_write_header_fields(s);
            }
        }
        if (r < 0) {
            return r;
        }
        s->l1_dirty = false;
        s->header_dirty = false;
    }
    r = qcow2_sync(s);                         /* step 4 */
    if (r < 0) {
        return r;
    }
    s->flush_step = QCOW2_FLUSH_UNLINKED;
    if (s->l1_old_offset) {
        r = qcow2_free_clusters_deferred(s, s->l1_old_offset,
                                         s->l1_old_clusters);
        s->l1_old_offset = 0;
    }
    if (r == 0 && s->npending) {
        /* Unlinking is durable: drop the references and write the blocks
         * (a crash before this completes only leaks the clusters). */
        r = qcow2_apply_pending_frees(s);
        if (r == 0) {
            r = qcow2_refcount_flush_blocks(s);
        }
        if (r == 0) {
            r = qcow2_sync(s);
        }
    }
    return r;
}

int
qcow2_flush(struct vmc_image *img)
{
    struct qcow2_state *s = qcow2_s(img);
    int r;

    assert(image_lock_held(img));
    if (!img->writable) {
        return 0;
    }
    r = flush_steps(s);
    s->flush_step = QCOW2_FLUSH_IDLE;
    return r;
}

/* ----------------------------------------------------------------- resize */

/* Grow the L1 table to @new_size entries (moves it to new clusters). */
static int
grow_l1(struct qcow2_state *s, uint32_t new_size)
{
    uint64_t clusters = DIV_ROUND_UP((uint64_t)new_size * 8, s->cluster_size);
    uint64_t off;
    uint64_t *nl1;
    struct qcow2_table **nl2;
    int r;

    if ((uint64_t)new_size * 8 > QCOW2_MAX_L1_BYTES) {
        return -EFBIG;
    }
    r = fmt_event(FMT_EV_L1_GROW_ALLOC_TABLE);
    if (r < 0) {
        return r;
    }
    nl1 = calloc(new_size, sizeof(uint64_t));
    nl2 = calloc(new_size, sizeof(*nl2));
    if (!nl1 || !nl2) {
        free(nl1);
        free(nl2);
        return -ENOMEM;
    }
    r = qcow2_alloc_clusters(s, clusters, &off);
    if (r < 0) {
        free(nl1);
        free(nl2);
        return r;
    }
    memcpy(nl1, s->l1, (size_t)s->l1_size * 8);
    memcpy(nl2, s->l2, (size_t)s->l1_size * sizeof(*nl2));
    free(s->l1);
    free(s->l2);
    s->l1 = nl1;
    s->l2 = nl2;
    if (s->l1_size) {
        s->l1_old_offset = s->l1_offset;
        s->l1_old_clusters = (uint32_t)DIV_ROUND_UP((uint64_t)s->l1_size * 8,
                                                    s->cluster_size);
    }
    s->l1_offset = off;
    s->l1_size = new_size;
    s->l1_dirty = true;
    s->header_dirty = true;
    return 0;
}

static int
qcow2_resize(struct vmc_image *img, uint64_t new_size, struct vmc_error *err)
{
    struct qcow2_state *s = qcow2_s(img);
    uint64_t need = DIV_ROUND_UP(new_size, s->cluster_size * s->l2_entries);
    uint64_t old_size = img->size;
    int r;

    if (new_size % 512) {
        return vmc_error_set(err, -EINVAL, "the new size must be a multiple "
                             "of 512");
    }
    if (new_size < img->size) {
        /* Drop every cluster that lies wholly past the new end. */
        r = qcow2_discard_tail(s, align_up(new_size, s->cluster_size));
        if (r < 0) {
            return vmc_error_set(err, r, "cannot shrink '%s': %s",
                                 img->filename, strerror(-r));
        }
        img->size = new_size;
        s->header_dirty = true;
        return 0;
    }
    if (need > QCOW2_MAX_L1_BYTES / 8) {
        return vmc_error_set(err, -EFBIG, "'%s': size too large for the "
                             "cluster size", img->filename);
    }
    if (need > s->l1_size) {
        r = grow_l1(s, (uint32_t)need);
        if (r < 0) {
            return vmc_error_set(err, r, "cannot grow L1 table of '%s': %s",
                                 img->filename, strerror(-r));
        }
    }
    img->size = new_size;
    s->header_dirty = true;
    /* The old last cluster may hold bytes past the old end (from a shrink):
     * the grown part must read as zeros, not as them. */
    if (old_size % s->cluster_size) {
        uint64_t tail = MIN(new_size, align_up(old_size, s->cluster_size)) -
                        old_size;
        r = qcow2_write_zeroes(img, old_size, tail, 0);
        if (r < 0) {
            return vmc_error_set(err, r, "cannot zero the grown part of "
                                 "'%s': %s", img->filename, strerror(-r));
        }
    }
    return 0;
}

/* ------------------------------------------------------------------- info */

static void
qcow2_get_info(const struct vmc_image *img, struct vmc_image_info *info)
{
    const struct qcow2_state *s = qcow2_s(img);

    info->cluster_size = (unsigned)s->cluster_size;
    info->qcow2_version = s->version;
    info->refcount_bits = s->refcount_bits;
    info->extended_l2 = s->ext_l2;
    info->lazy_refcounts = (s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    info->dirty = (s->incompat & QCOW2_INCOMPAT_DIRTY) != 0;
    info->corrupt = (s->incompat & QCOW2_INCOMPAT_CORRUPT) != 0 || s->corrupt;
    info->compression = s->compression_type ? VMC_COMPRESSION_ZSTD
                                            : VMC_COMPRESSION_ZLIB;
    info->nb_snapshots = s->nb_snapshots;
}

static uint64_t
qcow2_granularity(const struct vmc_image *img)
{
    return qcow2_s(img)->cluster_size;
}

static uint64_t
qcow2_subcluster_size(const struct vmc_image *img)
{
    return qcow2_s(img)->subcluster_size;
}

/* ----------------------------------------------------------------- create */

static int
validate_create_opts(const struct vmc_create_opts *o, unsigned *cluster_bits,
                     struct vmc_error *err)
{
    unsigned cs = o->cluster_size ? o->cluster_size : 65536;
    unsigned rb = o->refcount_bits ? o->refcount_bits : 16;
    unsigned compat = o->compat ? o->compat : 3;

    if (!is_power_of_2(cs) || cs < 512 || cs > (2u << 20)) {
        return vmc_error_set(err, -EINVAL, "cluster size must be a power of "
                             "two between 512 and 2048k");
    }
    if (!is_power_of_2(rb) || rb > 64) {
        return vmc_error_set(err, -EINVAL, "refcount width must be a power "
                             "of two and may not exceed 64 bits");
    }
    if (compat != 2 && compat != 3) {
        return vmc_error_set(err, -EINVAL, "compat must be 0.10 or 1.1");
    }
    if (compat == 2 && (rb != 16 || o->extended_l2 ||
                        o->compression != VMC_COMPRESSION_ZLIB)) {
        return vmc_error_set(err, -EINVAL, "compat=0.10 (version 2) only "
                             "supports 16-bit refcounts, no extended L2 "
                             "entries and zlib compression");
    }
    if (o->extended_l2 && cs < 16384) {
        return vmc_error_set(err, -EINVAL, "extended L2 entries are only "
                             "supported with cluster sizes of at least 16384 "
                             "bytes");
    }
    if (o->backing_file && o->prealloc != VMC_PREALLOC_OFF &&
        !o->extended_l2) {
        return vmc_error_set(err, -EINVAL, "backing file and preallocation "
                             "can only be used at the same time if "
                             "extended_l2 is on");
    }
    *cluster_bits = (unsigned)__builtin_ctz(cs);
    return 0;
}

static int
create_qcow2(const char *path, const struct format_create_params *p,
             unsigned cluster_bits, struct vmc_error *err)
{
    const struct vmc_create_opts *o = p->opts;
    uint64_t size = p->size;
    struct qcow2_ext pext = {
        .type = FORMAT_PARENT_SEAL_EXT,
        .len = FORMAT_PARENT_SEAL_LEN,
        .data = (uint8_t *)p->parent_seal,
    };
    struct qcow2_state st = { 0 };
    struct hio_file *f = NULL;
    struct vmc_image fake = { .size = size };
    uint64_t cs = 1ull << cluster_bits;
    unsigned rb = o->refcount_bits ? o->refcount_bits : 16;
    uint64_t l2_entries = cs / (o->extended_l2 ? 16 : 8);
    uint64_t l1_size = DIV_ROUND_UP(size, cs * l2_entries);
    uint64_t l1_clusters = DIV_ROUND_UP(l1_size * 8, cs);
    uint64_t total, rb_entries = cs * 8 / rb;
    uint8_t *buf = NULL;
    size_t used;
    uint64_t i;
    int r;

    if (l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        return vmc_error_set(err, -EFBIG, "the image size is too large for "
                             "file format 'qcow2' (try using a larger "
                             "cluster size)");
    }
    /* Layout: header, refcount table (1 cluster), refcount block, L1. */
    total = 3 + l1_clusters;
    if (total > rb_entries) {
        return vmc_error_set(err, -EFBIG, "the image size is too large for "
                             "the cluster size and refcount width");
    }
    st.img = &fake;
    st.version = o->compat == 2 ? 2 : 3;
    st.cluster_bits = cluster_bits;
    st.cluster_size = cs;
    st.header_length = st.version == 3 ? 112 : 72;
    st.compression_type = o->compression == VMC_COMPRESSION_ZSTD ? 1 : 0;
    st.incompat = (o->extended_l2 ? QCOW2_INCOMPAT_EXTL2 : 0) |
                  (st.compression_type ? QCOW2_INCOMPAT_COMPRESSION : 0);
    st.refcount_order = (unsigned)__builtin_ctz(rb);
    st.l1_size = (uint32_t)l1_size;
    st.l1_offset = 3 * cs;
    st.reftable_offset = cs;
    st.reftable_clusters = 1;
    if (p->parent_seal) {
        /* Tie the clone to the exact sealed template it was made from. */
        st.exts = &pext;
        st.nexts = 1;
    }

    buf = calloc(1, cs);
    if (!buf) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = qcow2_build_header(&st, p->backing_name,
                     p->backing_name ? vmc_format_name(p->backing_fmt) : NULL,
                     size, buf, cs, &used);
    if (r < 0) {
        vmc_error_set(err, -EINVAL, "header and backing file name do not "
                      "fit in one %llu-byte cluster",
                      (unsigned long long)cs);
        goto out;
    }
    r = hio_open(&f, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (r < 0) {
        vmc_error_set(err, r, "could not create '%s': %s", path, strerror(-r));
        goto out;
    }
    r = hio_pwrite(f, buf, used, 0);
    if (r < 0) {
        goto io_fail;
    }
    /* Refcount table: one entry, pointing at the block in cluster 2. */
    memset(buf, 0, cs);
    be64_store(buf, 2 * cs);
    r = hio_pwrite(f, buf, cs, cs);
    if (r < 0) {
        goto io_fail;
    }
    /* Refcount block: clusters 0..total-1 have refcount 1. */
    memset(buf, 0, cs);
    for (i = 0; i < total; i++) {
        uint64_t bitpos = i * rb;
        if (rb >= 8) {
            buf[(bitpos + rb) / 8 - 1] = 1;   /* big-endian value 1 */
        } else {
            buf[bitpos / 8] |= (uint8_t)(1u << (bitpos % 8));
        }
    }
    r = hio_pwrite(f, buf, cs, 2 * cs);
    if (r < 0) {
        goto io_fail;
    }
    /* L1 table: zeros; the file ends after the last L1 entry (QEMU too). */
    memset(buf, 0, cs);
    for (i = 0; i < l1_size; i += cs / 8) {
        size_t n = (size_t)MIN(cs, (l1_size - i) * 8);
        r = hio_pwrite(f, buf, n, st.l1_offset + i * 8);
        if (r < 0) {
            goto io_fail;
        }
    }
    if (!l1_size) {
        r = hio_truncate(f, 3 * cs);
        if (r < 0) {
            goto io_fail;
        }
    }
    r = hio_sync(f);
    if (r < 0) {
        goto io_fail;
    }
    r = 0;
    goto out;

io_fail:
    vmc_error_set(err, r, "cannot write '%s': %s", path, strerror(-r));
out:
    hio_close(f);
    free(buf);
    return r;
}

/* format_ops.create: lay out an empty qcow2 file (the chain resolved the
 * size, the backing reference and the parent seal). */
static int
qcow2_create(const char *path, const struct format_create_params *p,
             struct vmc_error *err)
{
    unsigned cluster_bits = 16;
    int r = validate_create_opts(p->opts, &cluster_bits, err);

    return r < 0 ? r : create_qcow2(path, p, cluster_bits, err);
}

const struct format_ops qcow2_ops = {
    .name = "qcow2",
    .format = VMC_FMT_QCOW2,
    .create = qcow2_create,
    .preallocate = qcow2_preallocate,
    .open = qcow2_open,
    .close = qcow2_close,
    .read = qcow2_read,
    .write = qcow2_write,
    .write_zeroes = qcow2_write_zeroes,
    .discard = qcow2_discard,
    .flush = qcow2_flush,
    .block_status = qcow2_block_status,
    .resize = qcow2_resize,
    .get_info = qcow2_get_info,
    .check = qcow2_check,
    .set_backing = qcow2_set_backing,
    .make_empty = qcow2_make_empty,
    .write_compressed = qcow2_write_compressed,
    .get_ext = qcow2_get_ext,
    .set_ext = qcow2_set_ext,
    .granularity = qcow2_granularity,
    .subcluster_size = qcow2_subcluster_size,
};
