/*
 * vmdk-sparse.c - hosted sparse extents: the header (or, for a
 * stream-optimized extent, its footer copy), the grain directory and its
 * redundant copy, grain tables (cached) and grains, plain or deflated
 * behind a grain marker. Every offset read from the file is checked to
 * lie inside the file and outside the extent's own metadata before use.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/vmdk/vmdk.h"
#include "util/util.h"

#define MAX_CAPACITY_SECTORS (1ull << 54)   /* 2^63 bytes */
/* Largest embedded descriptor, sectors. */
#define MAX_DESC_SECTORS (VMDK_MAX_DESC / VMDK_SECTOR)

/* The fields of a sparse extent header we use. */
struct sparse_header {
    uint32_t version, flags, gtes;
    uint64_t capacity, grain, desc_off, desc_size, rgd_off, gd_off;
    uint16_t compress;
};

static int
parse_header(const uint8_t *h, struct sparse_header *sh)
{
    static const uint8_t at64[] = {
        VMDK_H_CAPACITY, VMDK_H_GRAIN, VMDK_H_DESC_OFF, VMDK_H_DESC_SIZE,
        VMDK_H_RGD_OFF, VMDK_H_GD_OFF,
    };
    uint64_t *const to64[] = { &sh->capacity, &sh->grain, &sh->desc_off,
                               &sh->desc_size, &sh->rgd_off, &sh->gd_off };
    size_t i;

    if (memcmp(h, VMDK_MAGIC, 4)) {
        return -EINVAL;
    }
    for (i = 0; i < ARRAY_SIZE(at64); i++) {
        *to64[i] = le64_load(h + at64[i]);
    }
    sh->version = le32_load(h + VMDK_H_VERSION);
    sh->flags = le32_load(h + VMDK_H_FLAGS);
    sh->gtes = le32_load(h + VMDK_H_GTES);
    sh->compress = le16_load(h + VMDK_H_COMPRESS);
    return 0;
}

/* A stream-optimized extent keeps its real header in the footer: footer
 * marker, header, end-of-stream marker in the last three sectors. */
static int
read_footer(struct vmdk_extent *e, struct sparse_header *sh,
            struct vmc_error *err)
{
    uint8_t f[3 * VMDK_SECTOR];
    int r;

    if (e->file_length < 4 * VMDK_SECTOR) {
        return vmc_error_set(err, -EUCLEAN, "'%s': stream-optimized VMDK "
                             "without a footer (truncated?)", e->path);
    }
    r = hio_pread(e->file, f, sizeof(f), e->file_length - sizeof(f));
    if (r < 0) {
        return vmc_error_set(err, r, "'%s': %s", e->path, strerror(-r));
    }
    if (le32_load(f + 8) != 0 || le32_load(f + 12) != VMDK_MARKER_FOOTER ||
        parse_header(f + VMDK_SECTOR, sh) < 0 ||
        le32_load(f + 2 * VMDK_SECTOR + 12) != VMDK_MARKER_EOS ||
        sh->gd_off == VMDK_GD_AT_END) {
        return vmc_error_set(err, -EUCLEAN, "'%s': stream-optimized VMDK "
                             "with a damaged footer", e->path);
    }
    return 0;
}

static int
check_header(const struct vmdk_extent *e, const struct sparse_header *sh,
             struct vmc_error *err)
{
    if (sh->version < 1 || sh->version > 3) {
        return vmc_error_set(err, -ENOTSUP, "'%s': VMDK sparse extent "
                             "version %" PRIu32 " is not supported", e->path,
                             sh->version);
    }
    if ((sh->flags & VMDK_FLAG_COMPRESSED) &&
        (sh->compress != 1 || !(sh->flags & VMDK_FLAG_MARKERS))) {
        return vmc_error_set(err, -ENOTSUP, "'%s': VMDK compression %u "
                             "without grain markers is not supported",
                             e->path, sh->compress);
    }
    if (!is_power_of_2(sh->grain) || sh->grain > VMDK_MAX_GRAIN_SECTORS) {
        return vmc_error_set(err, -EUCLEAN, "'%s': invalid VMDK grain size "
                             "of %" PRIu64 " sectors", e->path, sh->grain);
    }
    if (!sh->gtes || sh->gtes > VMDK_MAX_GTES) {
        return vmc_error_set(err, -EUCLEAN, "'%s': invalid VMDK grain table "
                             "size of %" PRIu32 " entries", e->path,
                             sh->gtes);
    }
    if (sh->capacity > MAX_CAPACITY_SECTORS) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VMDK capacity of %" PRIu64
                             " sectors is too large", e->path,
                             sh->capacity);
    }
    if (!sh->gd_off) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VMDK grain directory at "
                             "offset 0 (the header)", e->path);
    }
    return 0;
}

/* Is [off, off+len) inside the file? */
static bool
in_file(const struct vmdk_extent *e, uint64_t off, uint64_t len)
{
    uint64_t end;

    return add_ok(off, len, &end) && end <= e->file_length;
}

/* Read and convert a table of @n little-endian 32-bit entries. */
static int
read_table(struct hio_file *f, uint32_t *t, uint64_t n, uint64_t off)
{
    uint64_t i;
    int r = hio_pread(f, t, n * 4, off);

    for (i = 0; r == 0 && i < n; i++) {
        t[i] = le32_load(&t[i]);
    }
    return r;
}

/* Load a grain directory at sector @sector into a new array. */
static int
load_gd(struct vmdk_extent *e, uint64_t sector, const char *what,
        uint32_t **out, struct vmc_error *err)
{
    uint64_t bytes = e->gd_entries * 4;
    int r;

    if (sector > UINT64_MAX / VMDK_SECTOR ||
        !in_file(e, sector * VMDK_SECTOR, bytes)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VMDK %s past the end of "
                             "the file", e->path, what);
    }
    *out = malloc(bytes ? bytes : 1);
    if (!*out) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = read_table(e->file, *out, e->gd_entries, sector * VMDK_SECTOR);
    return r < 0 ? vmc_error_set(err, r, "'%s': %s", e->path,
                                 strerror(-r)) : 0;
}

/* Does [off, off+len) overlap the header, descriptor or directories? */
static bool
hits_metadata(const struct vmdk_extent *e, const struct sparse_header *sh,
              uint64_t off, uint64_t len)
{
    uint64_t ranges[4][2] = {
        { 0, VMDK_SECTOR },
        { sh->desc_off * VMDK_SECTOR, sh->desc_size * VMDK_SECTOR },
        { sh->gd_off * VMDK_SECTOR, e->gd_entries * 4 },
        { sh->rgd_off * VMDK_SECTOR, sh->rgd_off ? e->gd_entries * 4 : 0 },
    };
    size_t i;

    for (i = 0; i < 4; i++) {
        if (ranges[i][1] && off < ranges[i][0] + ranges[i][1] &&
            ranges[i][0] < off + len) {
            return true;
        }
    }
    return false;
}

/* Every grain table a directory names lies in the file, off metadata. */
static int
check_gd(const struct vmdk_extent *e, const struct sparse_header *sh,
         const uint32_t *gd, const char *what, struct vmc_error *err)
{
    uint64_t i, gt_bytes = (uint64_t)e->gtes * 4;

    for (i = 0; i < e->gd_entries; i++) {
        uint64_t off = (uint64_t)gd[i] * VMDK_SECTOR;

        if (gd[i] && (!in_file(e, off, gt_bytes) ||
                      hits_metadata(e, sh, off, gt_bytes))) {
            return vmc_error_set(err, -EUCLEAN, "'%s': VMDK %s entry %"
                                 PRIu64 " points at sector %" PRIu32 ", %s",
                                 e->path, what, i, gd[i],
                                 in_file(e, off, gt_bytes)
                                 ? "inside the extent's metadata"
                                 : "past the end of the file");
        }
    }
    return 0;
}

/* The redundant directory, when the header says it is kept, must name a
 * grain table wherever the primary one does. */
static int
check_rgd(struct vmdk_extent *e, const struct sparse_header *sh,
          struct vmc_error *err)
{
    uint32_t *rgd = NULL;
    uint64_t i;
    int r;

    if (!(sh->flags & VMDK_FLAG_RGD) || !sh->rgd_off ||
        (sh->flags & VMDK_FLAG_MARKERS)) {
        return 0;
    }
    r = load_gd(e, sh->rgd_off, "redundant grain directory", &rgd, err);
    if (r == 0) {
        r = check_gd(e, sh, rgd, "redundant grain directory", err);
    }
    for (i = 0; r == 0 && i < e->gd_entries; i++) {
        if (!rgd[i] != !e->gd[i]) {
            r = vmc_error_set(err, -EUCLEAN, "'%s': the VMDK grain directory "
                              "and its redundant copy disagree at entry %"
                              PRIu64, e->path, i);
        }
    }
    free(rgd);
    return r;
}

static int
read_embedded_desc(struct vmdk_extent *e, const struct sparse_header *sh,
                   struct vmdk_desc *desc, struct vmc_error *err)
{
    char *text;
    int r;

    if (!sh->desc_off || !sh->desc_size) {
        return 0;
    }
    if (sh->desc_size > MAX_DESC_SECTORS ||
        sh->desc_off > UINT64_MAX / VMDK_SECTOR ||
        !in_file(e, sh->desc_off * VMDK_SECTOR, sh->desc_size * VMDK_SECTOR)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VMDK embedded descriptor "
                             "out of bounds", e->path);
    }
    text = malloc(sh->desc_size * VMDK_SECTOR);
    if (!text) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = hio_pread(e->file, text, sh->desc_size * VMDK_SECTOR,
                  sh->desc_off * VMDK_SECTOR);
    if (r < 0) {
        vmc_error_set(err, r, "'%s': %s", e->path, strerror(-r));
    } else {
        r = vmdk_desc_parse(text, sh->desc_size * VMDK_SECTOR, e->path, desc,
                            err);
    }
    free(text);
    return r;
}

/* Header (or footer) read and checked into @sh. */
static int
read_header(struct vmdk_extent *e, struct sparse_header *sh,
            struct vmc_error *err)
{
    uint8_t h[VMDK_SECTOR];
    int r = hio_length(e->file, &e->file_length);

    if (r == 0) {
        r = hio_pread(e->file, h, sizeof(h), 0);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "'%s': %s", e->path, strerror(-r));
    }
    if (!memcmp(h, "COWD", 4)) {
        return vmc_error_set(err, -ENOTSUP, "'%s': ESX sparse (COWD) VMDK "
                             "extents are not supported: convert it with "
                             "'qemu-img convert -O qcow2'", e->path);
    }
    if (parse_header(h, sh) < 0) {
        return vmc_error_set(err, -EUCLEAN, "'%s' is not a VMDK sparse "
                             "extent (no KDMV magic)", e->path);
    }
    if (sh->gd_off == VMDK_GD_AT_END && (r = read_footer(e, sh, err)) < 0) {
        return r;
    }
    return check_header(e, sh, err);
}

int
vmdk_sparse_open(struct vmdk_extent *e, uint64_t budget, uint64_t *used,
                 struct vmdk_desc *desc, struct vmc_error *err)
{
    struct sparse_header sh;
    uint64_t bytes;
    int r = read_header(e, &sh, err);

    if (r < 0) {
        return r;
    }
    e->capacity = sh.capacity * VMDK_SECTOR;
    e->grain = sh.grain * VMDK_SECTOR;
    e->gtes = sh.gtes;
    e->gt_cover = e->grain * sh.gtes;
    e->gd_entries = DIV_ROUND_UP(e->capacity, e->gt_cover);
    e->compressed = (sh.flags & VMDK_FLAG_COMPRESSED) != 0;
    e->zero_grain = (sh.flags & VMDK_FLAG_ZERO_GRAIN) != 0;
    bytes = e->gd_entries * 4 + (uint64_t)VMDK_GT_CACHE * e->gtes * 4;
    if (bytes > budget) {
        return vmc_error_set(err, -ENOMEM, "'%s': the VMDK grain directory "
                             "and table cache need %" PRIu64 " KiB, more "
                             "than the %" PRIu64 " KiB left of the table "
                             "memory limit", e->path, bytes >> 10,
                             budget >> 10);
    }
    *used += bytes;
    r = load_gd(e, sh.gd_off, "grain directory", &e->gd, err);
    if (r == 0) {
        r = check_gd(e, &sh, e->gd, "grain directory", err);
    }
    if (r == 0) {
        r = check_rgd(e, &sh, err);
    }
    if (r == 0 && desc) {
        r = read_embedded_desc(e, &sh, desc, err);
    }
    e->meta_end = sh.gd_off * VMDK_SECTOR + e->gd_entries * 4;
    return r;
}

void
vmdk_sparse_close(struct vmdk_extent *e)
{
    size_t i;

    for (i = 0; i < VMDK_GT_CACHE; i++) {
        free(e->gt_cache[i].entries);
    }
    free(e->gd);
    e->gd = NULL;
}

/* The grain table of directory entry @gi, through the cache. */
static int
load_gt(struct vmdk_extent *e, uint64_t gi, const uint32_t **out)
{
    struct vmdk_gt_slot *slot = &e->gt_cache[gi % VMDK_GT_CACHE];
    int r;

    if (!slot->valid || slot->gd_index != gi) {
        if (!slot->entries) {
            slot->entries = malloc((size_t)e->gtes * 4);
            if (!slot->entries) {
                return -ENOMEM;
            }
        }
        slot->valid = false;
        r = read_table(e->file, slot->entries, e->gtes,
                       (uint64_t)e->gd[gi] * VMDK_SECTOR);
        if (r < 0) {
            return r;
        }
        slot->valid = true;
        slot->gd_index = gi;
    }
    *out = slot->entries;
    return 0;
}

int
vmdk_sparse_lookup(struct vmdk_extent *e, uint64_t off, uint32_t *entry)
{
    uint64_t gi = off / e->gt_cover, grain_start = off - off % e->grain;
    uint64_t need = MIN(e->grain, e->length - grain_start);
    const uint32_t *gt;
    uint64_t host;
    int r;

    *entry = 0;
    if (gi >= e->gd_entries) {
        return -EUCLEAN;        /* capacity checked at open: cannot be */
    }
    if (!e->gd[gi]) {
        return 0;
    }
    r = load_gt(e, gi, &gt);
    if (r < 0) {
        return r;
    }
    *entry = gt[(off % e->gt_cover) / e->grain];
    if (*entry == 0 || (*entry == 1 && e->zero_grain)) {
        return 0;
    }
    host = (uint64_t)*entry * VMDK_SECTOR;
    /* a grain in the file and past the header and grain directory (a
     * compressed grain: its marker at least) */
    if (!in_file(e, host, e->compressed ? 12 : need) ||
        (host < e->meta_end && !e->compressed)) {
        return -EUCLEAN;
    }
    return 0;
}

void
vmdk_sparse_end(struct vmdk_state *s)
{
    if (s->zs) {
        inflateEnd(s->zs);
        free(s->zs);
        s->zs = NULL;
    }
}

/* Inflate the @size bytes at @in into @out (@out_len bytes of room; the
 * bytes it took in *@out_len), as uncompress() does but with one z_stream
 * kept in @s from grain to grain (no window allocated per grain). */
static int
inflate_once(struct vmdk_state *s, uint8_t *out, uLongf *out_len,
             const uint8_t *in, uLong size)
{
    z_stream *zs = s->zs;
    int zr;

    if (!zs) {
        zs = calloc(1, sizeof(*zs));
        if (!zs) {
            return -ENOMEM;
        }
        if (inflateInit(zs) != Z_OK) {
            free(zs);
            return -ENOMEM;
        }
        s->zs = zs;
    } else if (inflateReset(zs) != Z_OK) {
        return -EUCLEAN;
    }
    zs->next_in = (Bytef *)in;
    zs->avail_in = (uInt)size;
    zs->next_out = out;
    zs->avail_out = (uInt)*out_len;
    zr = inflate(zs, Z_FINISH);
    *out_len = zs->total_out;
    return zr == Z_STREAM_END ? 0 : -EUCLEAN;
}

/* Inflate the stream-optimized grain whose marker is at @host into @out
 * (e->grain bytes), or into s->grain_buf if @out is NULL (cached there:
 * the last grain read that way). */
static int
inflate_grain(struct vmdk_state *s, struct vmdk_extent *e, uint64_t host,
              uint64_t grain_start, uint8_t *out)
{
    const uint64_t cap = 12 + 2 * e->grain + 4096;
    uint64_t lba, size, got;
    uLongf out_len = (uLongf)e->grain;
    int r;

    if (!out && s->grain_ext == e && s->grain_off == host) {
        return 0;
    }
    if (s->comp_cap < cap || s->grain_buf_size < e->grain) {
        uint8_t *c = realloc(s->comp_buf, cap);
        uint8_t *g = c ? realloc(s->grain_buf, e->grain) : NULL;

        if (c) {
            s->comp_buf = c;
            s->comp_cap = cap;
        }
        if (!g) {
            return -ENOMEM;
        }
        s->grain_buf = g;
        s->grain_buf_size = e->grain;
    }
    if (!out) {
        s->grain_ext = NULL;
        out = s->grain_buf;
    }
    /* the marker and, in the same read, as much of the deflated data as a
     * grain that compressed to about its own size takes: one pread per
     * grain instead of two */
    if (!in_file(e, host, 12)) {
        return -EUCLEAN;
    }
    got = MIN(12 + e->grain + VMDK_SECTOR, e->file_length - host);
    r = hio_pread(e->file, s->comp_buf, got, host);
    if (r < 0) {
        return r;
    }
    lba = le64_load(s->comp_buf);
    size = le32_load(s->comp_buf + 8);
    if (lba * VMDK_SECTOR != grain_start || !size ||
        size > 2 * e->grain + 4096 || !in_file(e, host + 12, size)) {
        return -EUCLEAN;
    }
    if (12 + size > got) {
        r = hio_pread(e->file, s->comp_buf + got, 12 + size - got,
                      host + got);
        if (r < 0) {
            return r;
        }
    }
    r = inflate_once(s, out, &out_len, s->comp_buf + 12, (uLong)size);
    if (r < 0) {
        return r;
    }
    if (out_len < MIN(e->grain, e->length - grain_start)) {
        return -EUCLEAN;
    }
    memset(out + out_len, 0, e->grain - out_len);
    if (out == s->grain_buf) {
        s->grain_ext = e;
        s->grain_off = host;
    }
    return 0;
}

int
vmdk_sparse_read(struct vmdk_state *s, struct vmdk_extent *e, void *buf,
                 uint64_t off, size_t len, uint32_t entry)
{
    uint64_t host = (uint64_t)entry * VMDK_SECTOR, in = off % e->grain;
    int r;

    if (!e->compressed) {
        return hio_pread(e->file, buf, len, host + in);
    }
    if (in == 0 && len == e->grain) {
        /* a whole grain: inflated where it goes, no copy */
        return inflate_grain(s, e, host, off, buf);
    }
    r = inflate_grain(s, e, host, off - in, NULL);
    if (r == 0) {
        memcpy(buf, s->grain_buf + in, len);
    }
    return r;
}
