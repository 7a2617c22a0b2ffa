/*
 * vmdk-write.c - the VMDK writer (writer.h): one hosted sparse extent
 * with its descriptor embedded, as monolithicSparse (default) or
 * streamOptimized (what OVA appliances carry). Header fields in vmdk.h.
 *
 * monolithicSparse (version 1): header, descriptor (sectors 1-20), the
 * redundant grain directory and its grain tables, the grain directory and
 * its grain tables (every table preallocated, as the specification lays
 * them out), then 64 KiB grains in the order they are first written. A
 * grain table is written (to both copies) once the writes have left the
 * 32 MiB it covers, so one table is held in memory.
 *
 * streamOptimized (version 3): header (grain directory "at the end"),
 * descriptor, then each non-zero grain deflated behind its marker; each
 * grain table follows its grains behind a GT marker; then the GD marker
 * and directory, the footer marker and a copy of the header giving the
 * directory's place, and the end-of-stream marker. Grain tables with no
 * grain are not written (their directory entry is 0).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/vmdk/vmdk.h"
#include "format/writer.h"
#include "util/util.h"

#define GRAIN_SECTORS   128u          /* 64 KiB */
#define GTES            512u
#define GT_SECTORS      (GTES * 4 / VMDK_SECTOR)
#define DESC_OFF        1u
#define DESC_SECTORS    20u
/* Grain and table offsets are 32-bit sector numbers. */
#define MAX_SECTORS     0xffffffffull

struct vmdk_writer {
    bool stream;
    uint64_t capacity;        /* sectors */
    uint64_t gd_entries;
    uint32_t *gd;             /* sector of each grain table */
    uint64_t rgd_off, gd_off; /* sectors (monolithicSparse) */
    uint64_t rgt0, gt0;       /* sector of the first (redundant) table */
    uint64_t overhead;        /* sectors before the first grain */
    uint32_t gt[GTES];        /* the current grain table */
    uint64_t gt_index;        /* which table gt[] holds, +1; 0 none */
    uint64_t next;            /* next free byte */
    uint8_t *zbuf;            /* stream: marker + deflated grain */
    uLong zcap;
};

/* Sectors that @bytes take. */
static uint64_t
sectors(uint64_t bytes)
{
    return DIV_ROUND_UP(bytes, VMDK_SECTOR);
}

/* Where everything goes; refuse what 32-bit sector numbers cannot hold
 * when fully allocated. */
static int
plan_layout(struct vmc_writer *w, struct vmdk_writer *v,
            struct vmc_error *err)
{
    uint64_t gd_sectors;

    v->capacity = w->size / VMDK_SECTOR;
    v->gd_entries = DIV_ROUND_UP(v->capacity, (uint64_t)GTES * GRAIN_SECTORS);
    gd_sectors = sectors(v->gd_entries * 4);
    if (v->stream) {
        v->overhead = GRAIN_SECTORS;
    } else {
        v->rgd_off = DESC_OFF + DESC_SECTORS;
        v->rgt0 = v->rgd_off + gd_sectors;
        v->gd_off = v->rgt0 + v->gd_entries * GT_SECTORS;
        v->gt0 = v->gd_off + gd_sectors;
        v->overhead = align_up(v->gt0 + v->gd_entries * GT_SECTORS,
                               GRAIN_SECTORS);
    }
    if (v->capacity + v->capacity / GRAIN_SECTORS + 3 * v->overhead >
        MAX_SECTORS) {
        return vmc_error_set(err, -EFBIG, "'%s': %" PRIu64 " bytes is more "
                             "than a VMDK sparse extent holds (its grains are "
                             "addressed by 32-bit sector numbers: about 2 "
                             "TiB)", w->path, w->size);
    }
    v->next = v->overhead * VMDK_SECTOR;
    return 0;
}

static int
vmdk_w_begin(struct vmc_writer *w, struct vmc_error *err)
{
    struct vmdk_writer *v;
    bool stream = writer_subformat_is(w, "streamOptimized", false);
    int r;

    if (!stream && !writer_subformat_is(w, "monolithicSparse", true)) {
        return writer_bad_subformat(w, "monolithicSparse or "
                                    "streamOptimized", err);
    }
    if (w->o.block_size) {
        return vmc_error_set(err, -EINVAL, "invalid parameter 'block_size' "
                             "for format 'vmdk' (its grains are 64 KiB)");
    }
    if (w->size == 0) {
        return vmc_error_set(err, -EINVAL, "'%s': an empty %s image is not "
                             "read back by other tools: refused", w->path,
                             "VMDK");
    }
    v = calloc(1, sizeof(*v));
    if (!v) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    w->priv = v;
    v->stream = stream;
    w->block = GRAIN_SECTORS * VMDK_SECTOR;
    w->buffered = stream;
    r = plan_layout(w, v, err);
    if (r < 0) {
        return r;
    }
    v->gd = calloc(MAX(v->gd_entries, 1), 4);
    v->zcap = compressBound((uLong)w->block) + VMDK_SECTOR;
    v->zbuf = stream ? malloc(v->zcap) : NULL;
    if (!v->gd || (stream && !v->zbuf)) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

/* Write the current grain table (little-endian) at sector @at. */
static int
put_gt(struct vmc_writer *w, struct vmdk_writer *v, uint64_t at)
{
    uint8_t raw[GTES * 4];
    unsigned i;

    for (i = 0; i < GTES; i++) {
        le32_store(raw + 4 * i, v->gt[i]);
    }
    return hio_pwrite(w->file, raw, sizeof(raw), at * VMDK_SECTOR);
}

/* A metadata marker (stream) at v->next: one sector. */
static int
put_marker(struct vmc_writer *w, struct vmdk_writer *v, uint64_t nsec,
           uint32_t type)
{
    uint8_t m[VMDK_SECTOR] = { 0 };
    int r;

    le64_store(m, nsec);
    le32_store(m + 12, type);
    r = hio_pwrite(w->file, m, sizeof(m), v->next);
    v->next += VMDK_SECTOR;
    return r;
}

/* The grain table in gt[] is complete: write it where it belongs. */
static int
flush_gt(struct vmc_writer *w, struct vmdk_writer *v)
{
    uint64_t gi = v->gt_index - 1;
    int r;

    if (!v->gt_index) {
        return 0;
    }
    v->gt_index = 0;
    if (!v->stream) {
        r = put_gt(w, v, v->rgt0 + gi * GT_SECTORS);
        return r < 0 ? r : put_gt(w, v, v->gt0 + gi * GT_SECTORS);
    }
    r = put_marker(w, v, GT_SECTORS, VMDK_MARKER_GT);
    v->gd[gi] = (uint32_t)(v->next / VMDK_SECTOR);
    v->next += GT_SECTORS * VMDK_SECTOR;
    return r < 0 ? r : put_gt(w, v, v->gd[gi]);
}

/* Make gt[] the table of grain @b; -EFBIG once sectors overflow. */
static int
enter_gt(struct vmc_writer *w, struct vmdk_writer *v, uint64_t b)
{
    uint64_t gi = b / GTES;
    int r;

    if (v->gt_index != gi + 1) {
        r = flush_gt(w, v);
        if (r < 0) {
            return r;
        }
        memset(v->gt, 0, sizeof(v->gt));
        v->gt_index = gi + 1;
    }
    return v->next / VMDK_SECTOR + 2 * GRAIN_SECTORS > MAX_SECTORS ? -EFBIG
                                                                   : 0;
}

static int
vmdk_w_alloc(struct vmc_writer *w, uint64_t b, uint64_t *host)
{
    struct vmdk_writer *v = w->priv;
    int r = enter_gt(w, v, b);

    if (r < 0) {
        return r;
    }
    v->gt[b % GTES] = (uint32_t)(v->next / VMDK_SECTOR);
    *host = v->next;
    v->next += w->block;
    return 0;
}

/* Stream: deflate grain @b behind its marker (all-zero grains are left
 * out: they read as zeros). */
static int
vmdk_w_put_block(struct vmc_writer *w, uint64_t b, const uint8_t *buf)
{
    struct vmdk_writer *v = w->priv;
    uLong len = (uLong)MIN(w->block, w->size - b * w->block);
    uLongf out = v->zcap - VMDK_GRAIN_MARKER;
    uint64_t padded;
    int r;

    if (buffer_is_zero(buf, len)) {
        return 0;
    }
    r = enter_gt(w, v, b);
    if (r < 0) {
        return r;
    }
    if (compress2(v->zbuf + VMDK_GRAIN_MARKER, &out, buf, len,
                  w->o.zlib_level < 0 ? Z_DEFAULT_COMPRESSION
                                      : w->o.zlib_level) != Z_OK) {
        return -EIO;
    }
    le64_store(v->zbuf, b * GRAIN_SECTORS);
    le32_store(v->zbuf + 8, (uint32_t)out);
    padded = align_up(VMDK_GRAIN_MARKER + out, VMDK_SECTOR);
    memset(v->zbuf + VMDK_GRAIN_MARKER + out, 0,
           padded - VMDK_GRAIN_MARKER - out);
    r = hio_pwrite(w->file, v->zbuf, padded, v->next);
    v->gt[b % GTES] = (uint32_t)(v->next / VMDK_SECTOR);
    v->next += padded;
    return r;
}

/* The embedded descriptor, @DESC_SECTORS sectors. */
static int
fill_desc(const struct vmc_writer *w, const struct vmdk_writer *v,
          char *d, size_t cap, struct vmc_error *err)
{
    const char *base = strrchr(w->path, '/');
    uint64_t cyls = MIN(v->capacity / (16 * 63), 16383);
    uint32_t cid;
    uint8_t id[16];
    int n;

    writer_random_id(id);
    cid = le32_load(id);
    base = base ? base + 1 : w->path;
    n = snprintf(d, cap,
                 "# Disk DescriptorFile\nversion=1\nCID=%08" PRIx32 "\n"
                 "parentCID=ffffffff\ncreateType=\"%s\"\n\n"
                 "# Extent description\nRW %" PRIu64 " SPARSE \"%s\"\n\n"
                 "# The Disk Data Base\n#DDB\n\n"
                 "ddb.virtualHWVersion = \"4\"\n"
                 "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
                 "ddb.geometry.heads = \"16\"\n"
                 "ddb.geometry.sectors = \"63\"\n"
                 "ddb.adapterType = \"ide\"\n", cid,
                 v->stream ? "streamOptimized" : "monolithicSparse",
                 v->capacity, base, cyls);
    if (n < 0 || (size_t)n >= cap || strchr(base, '"')) {
        return vmc_error_set(err, -ENAMETOOLONG, "'%s': the file name does "
                             "not fit a VMDK descriptor (too long, or a "
                             "double quote)", w->path);
    }
    return 0;
}

static void
fill_header(const struct vmdk_writer *v, uint8_t *h, uint64_t gd_off)
{
    memset(h, 0, VMDK_SECTOR);
    memcpy(h, VMDK_MAGIC, 4);
    le32_store(h + VMDK_H_VERSION, v->stream ? 3 : 1);
    le32_store(h + VMDK_H_FLAGS, VMDK_FLAG_NL_TEST |
               (v->stream ? VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS
                          : VMDK_FLAG_RGD));
    le64_store(h + VMDK_H_CAPACITY, v->capacity);
    le64_store(h + VMDK_H_GRAIN, GRAIN_SECTORS);
    le64_store(h + VMDK_H_DESC_OFF, DESC_OFF);
    le64_store(h + VMDK_H_DESC_SIZE, DESC_SECTORS);
    le32_store(h + VMDK_H_GTES, GTES);
    le64_store(h + VMDK_H_RGD_OFF, v->rgd_off);
    le64_store(h + VMDK_H_GD_OFF, gd_off);
    le64_store(h + VMDK_H_OVERHEAD, v->overhead);
    memcpy(h + VMDK_H_NEWLINES, "\n \r\n", 4);
    le16_store(h + VMDK_H_COMPRESS, v->stream ? 1 : 0);
}

/* A grain directory (@first: sector of table 0, or the stream's table
 * places when 0) at sector @at. */
static int
put_gd(struct vmc_writer *w, const struct vmdk_writer *v, uint64_t first,
       uint64_t at)
{
    size_t len = sectors(v->gd_entries * 4) * VMDK_SECTOR;
    uint8_t *raw = calloc(1, MAX(len, 1));
    uint64_t i;
    int r;

    if (!raw) {
        return -ENOMEM;
    }
    for (i = 0; i < v->gd_entries; i++) {
        le32_store(raw + 4 * i, first ? (uint32_t)(first + i * GT_SECTORS)
                                      : v->gd[i]);
    }
    r = hio_pwrite(w->file, raw, len, at * VMDK_SECTOR);
    free(raw);
    return r;
}

/* Stream: GD marker and directory, footer marker, footer, EOS marker. */
static int
finish_stream(struct vmc_writer *w, struct vmdk_writer *v, uint8_t *h)
{
    uint64_t gd_sectors = sectors(v->gd_entries * 4), gd_at;
    int r = put_marker(w, v, gd_sectors, VMDK_MARKER_GD);

    gd_at = v->next / VMDK_SECTOR;
    if (r == 0) {
        r = put_gd(w, v, 0, gd_at);
    }
    v->next += gd_sectors * VMDK_SECTOR;
    if (r == 0) {
        r = put_marker(w, v, 1, VMDK_MARKER_FOOTER);
    }
    fill_header(v, h, gd_at);
    if (r == 0) {
        r = hio_pwrite(w->file, h, VMDK_SECTOR, v->next);
    }
    v->next += VMDK_SECTOR;
    if (r == 0) {
        r = put_marker(w, v, 0, VMDK_MARKER_EOS);
    }
    fill_header(v, h, VMDK_GD_AT_END);
    return r;
}

static int
vmdk_w_finish(struct vmc_writer *w, struct vmc_error *err)
{
    struct vmdk_writer *v = w->priv;
    char desc[DESC_SECTORS * VMDK_SECTOR] = { 0 };
    uint8_t h[VMDK_SECTOR];
    int r = fill_desc(w, v, desc, sizeof(desc), err);

    if (r < 0) {
        return r;
    }
    r = flush_gt(w, v);
    if (r == 0 && v->stream) {
        r = finish_stream(w, v, h);
    } else if (r == 0) {
        r = put_gd(w, v, v->rgt0, v->rgd_off);
        if (r == 0) {
            r = put_gd(w, v, v->gt0, v->gd_off);
        }
        fill_header(v, h, v->gd_off);
    }
    if (r == 0) {
        r = hio_truncate(w->file, v->next);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "cannot write '%s': %s", w->path,
                             strerror(-r));
    }
    r = writer_pwrite(w, h, sizeof(h), 0, err);
    return r < 0 ? r : writer_pwrite(w, desc, sizeof(desc),
                                     DESC_OFF * VMDK_SECTOR, err);
}

static void
vmdk_w_release(struct vmc_writer *w)
{
    struct vmdk_writer *v = w->priv;

    free(v->gd);
    free(v->zbuf);
    free(v);
}

const struct writer_ops vmdk_writer_ops = {
    .format = VMC_FMT_VMDK,
    .begin = vmdk_w_begin,
    .alloc = vmdk_w_alloc,
    .put_block = vmdk_w_put_block,
    .finish = vmdk_w_finish,
    .release = vmdk_w_release,
};
