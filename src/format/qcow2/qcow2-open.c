/*
 * qcow2-open.c - opening a qcow2 layer: reading and validating the header
 * and its extensions, the L1 and refcount tables, and closing it.
 *
 * Header validation follows the limits QEMU enforces (qcow2 spec "Header";
 * QEMU block/qcow2.c): every field is checked before memory is allocated
 * for it, and arithmetic on offsets is overflow-checked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

/* ------------------------------------------------------------- extensions */

static int
parse_extensions(struct qcow2_state *s, const uint8_t *hdr, uint64_t start,
                 uint64_t end, struct vmc_error *err)
{
    struct vmc_image *img = s->img;
    uint64_t pos = start;

    while (pos < end) {
        uint32_t type, len;
        const uint8_t *data;

        if (end - pos < 8) {
            /* Even the end marker must fit before @end (QEMU refuses). */
            return vmc_error_set(err, -EUCLEAN, "'%s': header extension "
                                 "at %llu runs past the end of the header "
                                 "area", img->filename,
                                 (unsigned long long)pos);
        }
        type = be32_load(hdr + pos);
        len = be32_load(hdr + pos + 4);
        data = hdr + pos + 8;
        pos += 8;
        if (type == QCOW2_EXT_END) {
            return 0;
        }
        if (len > end - pos) {
            return vmc_error_set(err, -EUCLEAN, "'%s': header extension "
                                 "0x%08x too large", img->filename, type);
        }
        switch (type) {
        case QCOW2_EXT_BACKING_FMT:
            if (len >= 16) {
                return vmc_error_set(err, -EUCLEAN, "'%s': backing format "
                                     "extension too large (%u bytes)",
                                     img->filename, len);
            }
            free(img->backing_fmt);
            img->backing_fmt = strndup((const char *)data, len);
            if (!img->backing_fmt) {
                return vmc_error_set(err, -ENOMEM, "out of memory");
            }
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            break;   /* we write our own */
        case QCOW2_EXT_BITMAPS:
        case QCOW2_EXT_CRYPTO:
        case QCOW2_EXT_DATA_FILE:
        default: {
            /* Unknown (or not interpreted): preserve on rewrite. */
            struct qcow2_ext *e;

            e = realloc(s->exts, (s->nexts + 1) * sizeof(*s->exts));
            if (!e) {
                return vmc_error_set(err, -ENOMEM, "out of memory");
            }
            s->exts = e;
            e = &s->exts[s->nexts];
            e->type = type;
            e->len = len;
            e->data = malloc(len ? len : 1);
            if (!e->data) {
                return vmc_error_set(err, -ENOMEM, "out of memory");
            }
            memcpy(e->data, data, len);
            s->nexts++;
            break;
        }
        }
        pos += align_up(len, 8);
    }
    return 0;
}

/* ------------------------------------------------------------------- open */

static int
validate_table(struct qcow2_state *s, uint64_t offset, uint64_t entries,
               uint64_t entry_size, uint64_t max_bytes, const char *what,
               struct vmc_error *err)
{
    uint64_t bytes = entries * entry_size, end;

    if (entries > max_bytes / entry_size) {
        return vmc_error_set(err, -EUCLEAN, "'%s': %s too large",
                             s->img->filename, what);
    }
    if ((offset & (s->cluster_size - 1)) || !add_ok(offset, bytes, &end) ||
        end > INT64_MAX) {
        return vmc_error_set(err, -EUCLEAN, "'%s': %s offset invalid",
                             s->img->filename, what);
    }
    return 0;
}

/* Step 1 of read_header(): the fixed fields of the first 104 bytes in
 * @hdr (version, cluster size, table locations; v3 feature bits and
 * header length). Sets *size to the guest size as recorded. */
static int
read_fixed_fields(struct qcow2_state *s, uint8_t *hdr, uint64_t *size,
                  struct vmc_error *err)
{
    const char *fn = s->img->filename;
    uint64_t file_len = UINT64_MAX;   /* unknown: the reads decide */
    int r;

    r = hio_length(s->f, &file_len);
    if (r == 0 && file_len < 72) {
        return vmc_error_set(err, -EUCLEAN, "'%s': qcow2 header truncated "
                             "(file is %llu bytes)", fn,
                             (unsigned long long)file_len);
    }
    r = hio_pread(s->f, hdr, 104, 0);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot read '%s': %s", fn,
                             strerror(-r));
    }
    if (be32_load(hdr) != QCOW2_MAGIC) {
        return vmc_error_set(err, -EUCLEAN, "'%s': image is not in qcow2 "
                             "format", fn);
    }
    s->version = be32_load(hdr + 4);
    if (s->version == 1) {
        return vmc_error_set(err, -ENOTSUP, "'%s': qcow version 1 images "
                             "are not supported (convert with qemu-img "
                             "first)", fn);
    }
    if (s->version != 2 && s->version != 3) {
        return vmc_error_set(err, -ENOTSUP, "'%s': unsupported qcow2 "
                             "version %u", fn, s->version);
    }
    s->cluster_bits = be32_load(hdr + 20);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        s->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        return vmc_error_set(err, -EUCLEAN, "'%s': unsupported cluster "
                             "size: 2^%u", fn, s->cluster_bits);
    }
    s->cluster_size = 1ull << s->cluster_bits;
    *size = be64_load(hdr + 24);
    s->crypt_method = be32_load(hdr + 32);
    s->l1_size = be32_load(hdr + 36);
    s->l1_offset = be64_load(hdr + 40);
    s->reftable_offset = be64_load(hdr + 48);
    s->reftable_clusters = be32_load(hdr + 56);
    s->nb_snapshots = be32_load(hdr + 60);
    s->snapshots_offset = be64_load(hdr + 64);
    if (s->version == 2) {
        s->refcount_order = 4;
        s->header_length = 72;
        return 0;
    }
    if (file_len < 104) {
        return vmc_error_set(err, -EUCLEAN, "'%s': qcow2 header truncated",
                             fn);
    }
    s->incompat = be64_load(hdr + 72);
    s->compat = be64_load(hdr + 80);
    s->autoclear = be64_load(hdr + 88);
    s->refcount_order = be32_load(hdr + 96);
    s->header_length = be32_load(hdr + 100);
    if (s->header_length < 104) {
        return vmc_error_set(err, -EUCLEAN, "'%s': qcow2 header too short",
                             fn);
    }
    if (s->header_length > s->cluster_size) {
        return vmc_error_set(err, -EUCLEAN, "'%s': qcow2 header exceeds "
                             "cluster size", fn);
    }
    return 0;
}

/* Step 2: read the whole of cluster 0 into *hdr (reallocated to one
 * cluster) and keep the optional header fields past byte 104. */
static int
read_cluster0(struct qcow2_state *s, uint8_t **hdr, struct vmc_error *err)
{
    const char *fn = s->img->filename;
    uint8_t *whole = realloc(*hdr, s->cluster_size);
    int r;

    if (!whole) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    *hdr = whole;
    r = hio_pread(s->f, whole, s->cluster_size, 0);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot read '%s': %s", fn,
                             strerror(-r));
    }
    if (s->header_length > 104) {
        s->compression_type = whole[104];
    }
    if (s->header_length > 112) {
        s->extra_header_len = s->header_length - 112;
        s->extra_header = malloc(s->extra_header_len);
        if (!s->extra_header) {
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
        memcpy(s->extra_header, whole + 112, s->extra_header_len);
    }
    return 0;
}

/* Step 3: refuse feature bits and encodings we do not implement. */
static int
check_features(struct qcow2_state *s, struct vmc_error *err)
{
    const char *fn = s->img->filename;

    if (s->incompat & ~QCOW2_INCOMPAT_KNOWN) {
        return vmc_error_set(err, -ENOTSUP, "'%s': unsupported qcow2 "
                             "feature(s): unknown incompatible bits 0x%llx",
                             fn, (unsigned long long)(s->incompat &
                                                      ~QCOW2_INCOMPAT_KNOWN));
    }
    if (s->incompat & QCOW2_INCOMPAT_DATA_FILE) {
        return vmc_error_set(err, -ENOTSUP, "'%s': images with an external "
                             "data file are not supported", fn);
    }
    if (s->crypt_method) {
        return vmc_error_set(err, -ENOTSUP, "'%s': encrypted images are not "
                             "supported (encryption method %llu)", fn,
                             (unsigned long long)s->crypt_method);
    }
    if (s->refcount_order > 6) {
        return vmc_error_set(err, -EUCLEAN, "'%s': reference count entry "
                             "width too large; may not exceed 64 bits", fn);
    }
    if (s->compression_type > 1) {
        return vmc_error_set(err, -ENOTSUP, "'%s': unknown compression type "
                             "%u", fn, s->compression_type);
    }
    if (!!s->compression_type !=
        !!(s->incompat & QCOW2_INCOMPAT_COMPRESSION)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': compression type and its "
                             "incompatible feature bit disagree", fn);
    }
    s->ext_l2 = (s->incompat & QCOW2_INCOMPAT_EXTL2) != 0;
    if (s->ext_l2 && s->cluster_bits < 14) {
        return vmc_error_set(err, -EUCLEAN, "'%s': unsupported subcluster "
                             "size: %llu", fn,
                             (unsigned long long)(s->cluster_size / 32));
    }
    return 0;
}

/* Step 4: the geometry every later step uses, from validated fields. */
static void
set_geometry(struct qcow2_state *s)
{
    s->l2_entry_size = s->ext_l2 ? 16 : 8;
    s->l2_entries = s->cluster_size / s->l2_entry_size;
    s->subcluster_size = s->ext_l2 ? s->cluster_size / QCOW2_SUBCLUSTERS
                                   : s->cluster_size;
    s->refcount_bits = 1u << s->refcount_order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX
                                             : (1ull << s->refcount_bits) - 1;
    s->rb_entries = s->cluster_size * 8 / s->refcount_bits;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->coffset_mask = (1ull << s->csize_shift) - 1;
}

/* Step 5: the refcount, snapshot and L1 tables lie inside the limits, and
 * the L1 table covers the guest @size. */
static int
check_tables(struct qcow2_state *s, unsigned flags, uint64_t size,
             struct vmc_error *err)
{
    const char *fn = s->img->filename;
    uint64_t l2_bytes;
    int r;

    if (!s->reftable_clusters && !(flags & VMC_OPEN_CHECK)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': image does not contain a "
                             "reference count table", fn);
    }
    r = validate_table(s, s->reftable_offset,
                       (uint64_t)s->reftable_clusters * s->cluster_size, 1,
                       QCOW2_MAX_REFTABLE_BYTES, "reference count table", err);
    if (r < 0) {
        return r;
    }
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        return vmc_error_set(err, -EUCLEAN, "'%s': snapshot table too large",
                             fn);
    }
    /* Checked with no snapshots too: QEMU refuses a misaligned offset
     * whatever the count. */
    r = validate_table(s, s->snapshots_offset, s->nb_snapshots,
                       QCOW2_SNAPSHOT_ENTRY_MIN, UINT64_MAX, "snapshot table",
                       err);
    if (r < 0) {
        return r;
    }
    r = validate_table(s, s->l1_offset, s->l1_size, 8, QCOW2_MAX_L1_BYTES,
                       "active L1 table", err);
    if (r < 0) {
        return r;
    }
    if (size > QCOW2_MAX_SIZE) {
        /* offsets + lengths must not wrap anywhere (QEMU's limit too) */
        return vmc_error_set(err, -EUCLEAN, "'%s': image size %llu is too "
                             "large", fn, (unsigned long long)size);
    }
    l2_bytes = s->cluster_size * s->l2_entries;   /* guest bytes per L2 */
    if (DIV_ROUND_UP(size, l2_bytes) > s->l1_size) {
        return vmc_error_set(err, -EUCLEAN, "'%s': L1 table is too small",
                             fn);
    }
    return 0;
}

/* Step 6: the header extensions and the backing file name of cluster 0
 * in @hdr. */
static int
read_extensions_and_backing(struct qcow2_state *s, const uint8_t *hdr,
                            struct vmc_error *err)
{
    struct vmc_image *img = s->img;
    const char *fn = img->filename;
    uint64_t backing_off = be64_load(hdr + 8), ext_end = s->cluster_size;
    uint32_t backing_len = be32_load(hdr + 16);
    int r;

    if (backing_off) {
        if (backing_off > s->cluster_size) {
            return vmc_error_set(err, -EUCLEAN, "'%s': invalid backing file "
                                 "offset", fn);
        }
        if (backing_len > QCOW2_MAX_BACKING_NAME ||
            backing_len > s->cluster_size - backing_off) {
            return vmc_error_set(err, -EUCLEAN, "'%s': backing file name too "
                                 "long", fn);
        }
        ext_end = backing_off;
    }
    r = parse_extensions(s, hdr, s->header_length, ext_end, err);
    if (r < 0 || !backing_off) {
        return r;
    }
    img->backing_name = strndup((const char *)hdr + backing_off, backing_len);
    if (!img->backing_name) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (strlen(img->backing_name) != backing_len) {
        return vmc_error_set(err, -EUCLEAN, "'%s': backing file name "
                             "contains a NUL byte", fn);
    }
    return 0;
}

/* Read and validate the header of the layer in s->f, in the steps above:
 * the fixed fields first, then cluster 0 whole once its size is known
 * (not a 2 MiB buffer for every layer: at depth 128 zeroing those was
 * half of the chain open). */
static int
read_header(struct qcow2_state *s, unsigned flags, struct vmc_error *err)
{
    uint8_t *hdr = calloc(1, 104);
    uint64_t size = 0;
    int r;

    if (!hdr) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = read_fixed_fields(s, hdr, &size, err);
    if (r == 0) {
        r = read_cluster0(s, &hdr, err);
    }
    if (r == 0) {
        r = check_features(s, err);
    }
    if (r == 0) {
        set_geometry(s);
        r = check_tables(s, flags, size, err);
    }
    if (r == 0) {
        s->img->size = size;
        r = read_extensions_and_backing(s, hdr, err);
    }
    free(hdr);
    return r;
}

/* The L1 table and the L2 cache index (one pointer per L1 entry) must
 * fit in what the chain's table budget leaves (issue 9: deep chains of
 * maximal L1 tables); checked before either is allocated or read. */
static int
check_table_budget(struct qcow2_state *s, struct vmc_error *err)
{
    struct vmc_image *img = s->img;
    uint64_t need = (uint64_t)s->l1_size *
                    (sizeof(*s->l1) + sizeof(*s->l2));

    if (need > img->table_budget) {
        return vmc_error_set(err, -ENOMEM, "'%s': its L1 table needs %llu "
                             "KiB, more than the %llu KiB left of the "
                             "chain's table memory limit", img->filename,
                             (unsigned long long)(need >> 10),
                             (unsigned long long)(img->table_budget >> 10));
    }
    img->table_bytes = need;
    return 0;
}

static int
check_writable_open(struct qcow2_state *s, struct vmc_error *err)
{
    const char *fn = s->img->filename;

    if (s->incompat & QCOW2_INCOMPAT_CORRUPT) {
        return vmc_error_set(err, -EUCLEAN, "'%s': image is corrupt; cannot "
                             "be opened read/write (run 'check -r all')", fn);
    }
    if (s->incompat & QCOW2_INCOMPAT_DIRTY) {
        return vmc_error_set(err, -EUCLEAN, "'%s': image was not closed "
                             "cleanly (dirty bit set); repair it with "
                             "'check -r all' before writing", fn);
    }
    if (s->nb_snapshots) {
        return vmc_error_set(err, -ENOTSUP, "'%s': writing to images with "
                             "internal snapshots is not supported", fn);
    }
    if (s->autoclear & QCOW2_AUTOCLEAR_BITMAPS) {
        return vmc_error_set(err, -ENOTSUP, "'%s': writing to images with "
                             "persistent dirty bitmaps is not supported", fn);
    }
    return 0;
}

int
qcow2_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    struct qcow2_state *s;
    uint32_t i;
    int r;

    s = calloc(1, sizeof(*s));
    if (!s) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fmt_event_init_from_env();
    img->priv = s;
    s->img = img;
    s->f = img->file;
    r = read_header(s, flags, err);
    if (r < 0) {
        goto fail;
    }
    if (img->writable && !(flags & VMC_OPEN_CHECK)) {
        r = check_writable_open(s, err);
        if (r < 0) {
            goto fail;
        }
    }
    r = check_table_budget(s, err);
    if (r < 0) {
        goto fail;
    }
    /* Read in place and convert (no second L1-sized buffer). */
    s->l1 = calloc(s->l1_size ? s->l1_size : 1, sizeof(uint64_t));
    if (!s->l1) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if (s->l1_size) {
        r = hio_pread(s->f, s->l1, (size_t)s->l1_size * 8, s->l1_offset);
        if (r < 0) {
            vmc_error_set(err, r, "cannot read L1 table of '%s': %s",
                          img->filename, strerror(-r));
            goto fail;
        }
    }
    for (i = 0; i < s->l1_size; i++) {
        s->l1[i] = be64_load((const uint8_t *)&s->l1[i]);
    }
    s->l2 = calloc(s->l1_size ? s->l1_size : 1, sizeof(*s->l2));
    if (!s->l2) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    s->dcache_entry = 0;
    {
        uint64_t flen = 0, alloc = 0;
        if (hio_length(s->f, &flen) == 0 &&
            hio_allocated_bytes(s->f, &alloc) == 0) {
            s->sparse_file = alloc + s->cluster_size < flen;
        }
    }
    /* Cache up to 32 MiB of L2 tables, like QEMU's default. */
    s->l2_cache_max = MAX(4, (32ull << 20) / s->cluster_size);
    /* Read-only layers never touch refcounts: skip loading the table
     * (chain open cost grows with depth otherwise). */
    r = qcow2_refcount_init(s, img->writable || (flags & VMC_OPEN_CHECK));
    if (r < 0) {
        vmc_error_set(err, r, "cannot read refcount table of '%s': %s",
                      img->filename, strerror(-r));
        goto fail;
    }
    if (img->writable && s->version >= 3 &&
        (s->autoclear & ~(uint64_t)QCOW2_AUTOCLEAR_BITMAPS)) {
        /* Autoclear bits we do not maintain must be cleared on write. */
        s->autoclear &= QCOW2_AUTOCLEAR_BITMAPS;
        r = qcow2_write_header_fields(s);
        if (r < 0) {
            vmc_error_set(err, r, "cannot update header of '%s': %s",
                          img->filename, strerror(-r));
            goto fail;
        }
    }
    return 0;

fail:
    qcow2_close(img);
    return r;
}

void
qcow2_close(struct vmc_image *img)
{
    struct qcow2_state *s = qcow2_s(img);
    unsigned i;

    if (!s) {
        return;
    }
    qcow2_l2_cache_release(s);
    qcow2_refcount_release(s);
    free(s->l1);
    free(s->l2);
    free(s->meta);
    free(s->dcache);
    free(s->cbuf);
    free(s->extra_header);
    for (i = 0; i < s->nexts; i++) {
        free(s->exts[i].data);
    }
    free(s->exts);
    free(s);
    img->priv = NULL;
}
