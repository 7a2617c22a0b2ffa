/*
 * vpc.c - the read-only VHD (Virtual PC) format driver: open, the data
 * path and block status (layout in vpc.h, metadata in vpc-header.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/foreign.h"
#include "format/vpc/vpc.h"
#include "util/util.h"

/* Host offset of the bitmap of the block holding @off, 0 if none. */
static uint64_t
block_host(const struct vpc_state *s, uint64_t off)
{
    uint64_t idx = off / s->block_size;

    if (idx >= s->nbat || s->bat[idx] == VPC_BAT_FREE) {
        return 0;
    }
    return (uint64_t)s->bat[idx] * 512;
}

/* Load the sector bitmap at @host into s->bitmap (cached). */
static int
load_bitmap(struct vpc_state *s, struct vmc_image *img, uint64_t host)
{
    int r;

    if (s->cached_bitmap == host) {
        return 0;
    }
    s->cached_bitmap = 0;
    r = hio_pread(img->file, s->bitmap, s->bitmap_size, host);
    if (r == 0) {
        s->cached_bitmap = host;
    }
    return r;
}

/*
 * The source of the run at @off (foreign_run_fn): a fixed disk is its
 * file; a dynamic disk's unallocated blocks read as zeros, a differencing
 * disk's read through to the parent, and its allocated blocks split at
 * their sector bitmap.
 */
static int
vpc_run(struct vmc_image *img, uint64_t off, uint64_t len,
        enum foreign_src *src, uint64_t *host, uint64_t *run)
{
    struct vpc_state *s = img->priv;
    uint64_t in_block, b, sec;
    bool present;
    int r;

    if (s->type == VPC_FIXED) {
        *src = FOREIGN_FILE;
        *host = off;
        *run = len;
        return 0;
    }
    in_block = off % s->block_size;
    b = block_host(s, off);
    *run = MIN(len, s->block_size - in_block);
    *host = b + s->bitmap_size + in_block;
    *src = b ? FOREIGN_FILE : s->type == VPC_DYNAMIC ? FOREIGN_ZERO
                                                     : FOREIGN_PARENT;
    if (!b || s->type != VPC_DIFFERENCING) {
        return 0;
    }
    r = load_bitmap(s, img, b);
    if (r < 0) {
        return r;
    }
    sec = in_block / 512;
    sec += foreign_bit_run(s->bitmap, sec, DIV_ROUND_UP(in_block + *run, 512),
                           true, &present);
    *run = MIN(*run, sec * 512 - in_block);
    *src = present ? FOREIGN_FILE : FOREIGN_PARENT;
    return 0;
}

static uint64_t
vpc_granularity(const struct vmc_image *img)
{
    const struct vpc_state *s = img->priv;

    if (s->type == VPC_FIXED) {
        return 4096;
    }
    return s->type == VPC_DIFFERENCING ? 512 : s->block_size;
}

static void
vpc_get_info(const struct vmc_image *img, struct vmc_image_info *info)
{
    const struct vpc_state *s = img->priv;

    info->cluster_size = s->type == VPC_FIXED ? 0 : s->block_size;
}

static int
vpc_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    uint8_t footer[VPC_FOOTER_SIZE];
    struct vpc_state *s;
    uint64_t file_len;
    int r = foreign_open_begin(img, flags, sizeof(*s), vpc_run, &file_len,
                               err);

    if (r == 0) {
        r = vpc_read_footer(img, file_len, footer, err);
    }
    if (r < 0) {
        return r;
    }
    s = img->priv;
    s->type = (enum vpc_type)be32_load(footer + VPC_F_TYPE);
    memcpy(s->creator, footer + VPC_F_CREATOR, 4);
    img->size = vpc_virtual_size(footer);
    if (img->size > ((uint64_t)INT64_MAX & ~511ull)) {
        r = vmc_error_set(err, -EFBIG, "'%s': VHD size %" PRIu64 " is too "
                          "large", img->filename, img->size);
    } else if (s->type == VPC_FIXED) {
        /* QEMU maps a fixed disk's holes as data reading zeros */
        s->base.holes_read_zero = true;
        if (img->size > file_len - VPC_FOOTER_SIZE) {
            r = vmc_error_set(err, -EUCLEAN, "'%s': fixed VHD of %" PRIu64
                              " bytes in a file of %" PRIu64, img->filename,
                              img->size, file_len);
        }
    } else if (s->type == VPC_DYNAMIC || s->type == VPC_DIFFERENCING) {
        r = vpc_open_dynamic(img, s, footer, file_len, err);
    } else {
        r = vmc_error_set(err, -ENOTSUP, "'%s': unknown VHD disk type %u",
                          img->filename, (unsigned)s->type);
    }
    return r;
}

const struct format_ops vpc_ops = FOREIGN_OPS("vpc", VMC_FMT_VPC, vpc_open,
                foreign_block_status, vpc_get_info,
                vpc_granularity);
