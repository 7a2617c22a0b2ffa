/*
 * vhdx.c - the read-only VHDX (Hyper-V) format driver: the BAT, the data
 * path and block status (layout in vhdx.h, metadata in vhdx-meta.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/foreign.h"
#include "format/vhdx/vhdx.h"
#include "util/util.h"


/* Does [off, off+len) stay inside the file and off the metadata? */
static bool
block_placed_ok(const struct vhdx_layout *l, uint64_t off, uint64_t len,
                uint64_t file_len)
{
    uint64_t end = off + len;

    return off >= VHDX_MiB && foreign_in_file(off, len, file_len) &&
           (end <= l->bat_off || off >= l->bat_off + l->bat_len) &&
           (end <= l->meta_off || off >= l->meta_off + l->meta_len) &&
           (end <= l->log_off || off >= l->log_off + l->log_len);
}

/* Check one BAT entry (@i: its index) against the layout. */
static const char *
check_entry(const struct vhdx_state *s, uint64_t i, uint64_t file_len)
{
    uint64_t e = s->bat[i];
    unsigned st = VHDX_BAT_STATE(e);
    bool bitmap = (i + 1) % (s->chunk_ratio + 1) == 0;

    if (bitmap) {
        if (st == 0) {
            return NULL;
        }
        if (st != 6 || !s->l.has_parent) {
            return "has an invalid sector bitmap state";
        }
        return block_placed_ok(&s->l, VHDX_BAT_OFFSET(e), VHDX_MiB, file_len)
               ? NULL : "puts a sector bitmap outside the file or on metadata";
    }
    switch (st) {
    case VHDX_NOT_PRESENT: case VHDX_UNDEFINED: case VHDX_ZERO:
    case VHDX_UNMAPPED:
        return NULL;
    case VHDX_PARTIALLY_PRESENT:
        if (!s->l.has_parent) {
            return "is partly present in a file without a parent";
        }
        if (VHDX_BAT_STATE(s->bat[i - i % (s->chunk_ratio + 1) +
                                  s->chunk_ratio]) != 6) {
            return "is partly present without a sector bitmap";
        }
        __attribute__((fallthrough));
    case VHDX_FULLY_PRESENT:
        return block_placed_ok(&s->l, VHDX_BAT_OFFSET(e), s->l.block_size,
                               file_len)
               ? NULL : "puts a block outside the file or on metadata";
    default:
        return "has an invalid payload state";
    }
}

/* Load the BAT (entries for every payload block and, interleaved, the
 * sector bitmaps) and check every entry. */
static int
load_bat(struct vmc_image *img, struct vhdx_state *s, uint64_t file_len,
         struct vmc_error *err)
{
    uint64_t len, i;
    int r;

    s->chunk_ratio = ((uint64_t)1 << 23) * s->l.sector_size / s->l.block_size;
    s->nblocks = DIV_ROUND_UP(s->l.size, s->l.block_size);
    if (s->l.has_parent) {
        s->nbat = DIV_ROUND_UP(s->nblocks, s->chunk_ratio) *
                  (s->chunk_ratio + 1);
    } else {
        s->nbat = s->nblocks + (s->nblocks ? (s->nblocks - 1) /
                                s->chunk_ratio : 0);
    }
    len = s->nbat * 8;
    if (len > s->l.bat_len) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHDX BAT region (%" PRIu64
                             " bytes) too small for %" PRIu64 " entries",
                             img->filename, s->l.bat_len, s->nbat);
    }
    if (len > img->table_budget) {
        return vmc_error_set(err, -ENOMEM, "'%s': the VHDX BAT (%" PRIu64
                             " KiB) exceeds the table memory limit",
                             img->filename, len >> 10);
    }
    s->bat = malloc(len ? len : 1);
    s->base.table = s->bat;
    if (!s->bat) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    img->table_bytes = len;
    r = hio_pread(img->file, s->bat, len, s->l.bat_off);
    if (r < 0) {
        return vmc_error_set(err, r, "'%s': cannot read the VHDX BAT: %s",
                             img->filename, strerror(-r));
    }
    for (i = 0; i < s->nbat; i++) {
        s->bat[i] = le64_load(&s->bat[i]);
    }
    for (i = 0; i < s->nbat; i++) {
        const char *why = check_entry(s, i, file_len);

        if (why) {
            return vmc_error_set(err, -EUCLEAN, "'%s': VHDX BAT entry %"
                                 PRIu64 " (%#" PRIx64 ") %s", img->filename,
                                 i, s->bat[i], why);
        }
    }
    return 0;
}

/* The BAT entry of payload block @block. */
static uint64_t
payload_entry(const struct vhdx_state *s, uint64_t block)
{
    return s->bat[block + block / s->chunk_ratio];
}

/* Load the sector bits of payload @block (cached). */
static int
load_bitmap(struct vmc_image *img, struct vhdx_state *s, uint64_t block)
{
    uint64_t chunk = block / s->chunk_ratio;
    uint64_t bm = s->bat[chunk * (s->chunk_ratio + 1) + s->chunk_ratio];
    uint64_t bytes = s->l.block_size / s->l.sector_size / 8;
    int r;

    if (s->bitmap_block == block + 1) {
        return 0;
    }
    s->bitmap_block = 0;
    r = hio_pread(img->file, s->bitmap, bytes,
                  VHDX_BAT_OFFSET(bm) + (block % s->chunk_ratio) * bytes);
    if (r == 0) {
        s->bitmap_block = block + 1;
    }
    return r;
}

/* The source of the run at @off (foreign_run_fn); partly present blocks
 * split at their sector bitmap. */
static int
vhdx_run(struct vmc_image *img, uint64_t off, uint64_t len,
         enum foreign_src *src, uint64_t *host, uint64_t *run)
{
    struct vhdx_state *s = img->priv;
    uint64_t block = off / s->l.block_size, in = off % s->l.block_size;
    uint64_t e = payload_entry(s, block), ss = s->l.sector_size, sec;
    bool present;
    int r;

    *run = MIN(len, s->l.block_size - in);
    *host = VHDX_BAT_OFFSET(e) + in;
    switch (VHDX_BAT_STATE(e)) {
    case VHDX_FULLY_PRESENT:
        *src = FOREIGN_FILE;
        return 0;
    case VHDX_ZERO:
        *src = FOREIGN_ZERO;
        return 0;
    case VHDX_PARTIALLY_PRESENT:
        break;
    default:
        *src = s->l.has_parent ? FOREIGN_PARENT : FOREIGN_ZERO;
        return 0;
    }
    r = load_bitmap(img, s, block);
    if (r < 0) {
        return r;
    }
    sec = in / ss;
    sec += foreign_bit_run(s->bitmap, sec, DIV_ROUND_UP(in + *run, ss), false,
                           &present);
    *run = MIN(*run, sec * ss - in);
    *src = present ? FOREIGN_FILE : FOREIGN_PARENT;
    return 0;
}

static uint64_t
vhdx_granularity(const struct vmc_image *img)
{
    const struct vhdx_state *s = img->priv;

    return s->l.has_parent ? s->l.sector_size : s->l.block_size;
}

static void
vhdx_get_info(const struct vmc_image *img, struct vmc_image_info *info)
{
    const struct vhdx_state *s = img->priv;

    info->cluster_size = s->l.block_size;
}

static int
vhdx_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    struct vhdx_state *s;
    uint64_t file_len;
    int r = foreign_open_begin(img, flags, sizeof(*s), vhdx_run, &file_len,
                               err);

    if (r < 0) {
        return r;
    }
    s = img->priv;
    r = vhdx_read_layout(img, file_len, &s->l, err);
    if (r < 0) {
        return r;
    }
    img->size = s->l.size;
    r = load_bat(img, s, file_len, err);
    if (r == 0 && s->l.has_parent) {
        s->bitmap = malloc(s->l.block_size / s->l.sector_size / 8);
        s->base.bitmap = s->bitmap;
        if (!s->bitmap) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        }
    }
    return r;
}

const struct format_ops vhdx_ops = FOREIGN_OPS("vhdx", VMC_FMT_VHDX, vhdx_open,
                foreign_block_status, vhdx_get_info,
                vhdx_granularity);
