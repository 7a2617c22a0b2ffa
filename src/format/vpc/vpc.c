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

static void
vpc_close(struct vmc_image *img)
{
    struct vpc_state *s = img->priv;

    if (s) {
        free(s->bat);
        free(s->bitmap);
        free(s);
    }
    img->priv = NULL;
}

static int
vpc_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    uint8_t footer[VPC_FOOTER_SIZE];
    struct vpc_state *s;
    uint64_t file_len;
    int r = foreign_refuse_rdwr(img, flags, err);

    if (r < 0) {
        return r;
    }
    r = hio_length(img->file, &file_len);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot stat '%s': %s", img->filename,
                             strerror(-r));
    }
    r = vpc_read_footer(img, file_len, footer, err);
    if (r < 0) {
        return r;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    img->priv = s;
    s->type = (enum vpc_type)be32_load(footer + 60);
    memcpy(s->creator, footer + 28, 4);
    img->size = vpc_virtual_size(footer);
    if (img->size > ((uint64_t)INT64_MAX & ~511ull)) {
        r = vmc_error_set(err, -EFBIG, "'%s': VHD size %" PRIu64 " is too "
                          "large", img->filename, img->size);
    } else if (s->type == VPC_FIXED) {
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

static bool
sector_present(const struct vpc_state *s, uint64_t sector)
{
    return s->bitmap[sector / 8] & (0x80 >> (sector % 8));
}

/*
 * Status of the run at @off (inside one block, at most @len bytes):
 * *host is where the data lies (0: read through to the parent, or zeros
 * for a dynamic disk). Differencing blocks are split by their bitmap.
 */
static int
vpc_run(struct vmc_image *img, uint64_t off, uint64_t len, uint64_t *host,
        uint64_t *run)
{
    struct vpc_state *s = img->priv;
    uint64_t in_block = off % s->block_size, b = block_host(s, off);
    uint64_t sec, end;
    bool present;
    int r;

    *run = MIN(len, s->block_size - in_block);
    *host = b ? b + s->bitmap_size + in_block : 0;
    if (!b || s->type != VPC_DIFFERENCING) {
        return 0;
    }
    r = load_bitmap(s, img, b);
    if (r < 0) {
        return r;
    }
    sec = in_block / 512;
    present = sector_present(s, sec);
    end = (in_block + *run + 511) / 512;
    while (++sec < end && sector_present(s, sec) == present) {
    }
    *run = MIN(*run, sec * 512 - in_block);
    if (!present) {
        *host = 0;
    }
    return 0;
}

static int
vpc_read(struct vmc_image *img, void *buf, uint64_t off, size_t len)
{
    struct vpc_state *s = img->priv;
    uint8_t *p = buf;

    if (s->type == VPC_FIXED) {
        return hio_pread(img->file, buf, len, off);
    }
    while (len) {
        uint64_t host, run;
        int r = vpc_run(img, off, len, &host, &run);

        if (r == 0 && host) {
            r = hio_pread(img->file, p, run, host);
        } else if (r == 0 && s->type == VPC_DIFFERENCING) {
            r = format_read_backing(img, p, off, run);
        } else if (r == 0) {
            memset(p, 0, run);
        }
        if (r < 0) {
            return r;
        }
        p += run;
        off += run;
        len -= run;
    }
    return 0;
}

static int
vpc_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                 struct vmc_block_status *out)
{
    struct vpc_state *s = img->priv;
    uint64_t host, run;
    int r;

    memset(out, 0, sizeof(*out));
    if (s->type == VPC_FIXED) {
        bool is_data;

        r = hio_data_run(img->file, off, len, &is_data, &run);
        out->length = run ? MIN(run, len) : len;
        /* QEMU reports holes of a fixed disk as data reading zeros */
        out->flags = VMC_BS_ALLOCATED | VMC_BS_OFFSET | VMC_BS_DATA |
                     (is_data ? 0 : VMC_BS_ZERO);
        out->host_offset = off;
        return r;
    }
    r = vpc_run(img, off, len, &host, &run);
    if (r < 0) {
        return r;
    }
    out->length = run;
    if (host) {
        out->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_OFFSET;
        out->host_offset = host;
    } else if (s->type == VPC_DYNAMIC) {
        out->flags = VMC_BS_ALLOCATED | VMC_BS_ZERO;   /* as QEMU says */
    }
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

const struct format_ops vpc_ops = {
    .name = "vpc",
    .format = VMC_FMT_VPC,
    .open = vpc_open,
    .close = vpc_close,
    .read = vpc_read,
    .write = foreign_write,
    .write_zeroes = foreign_write_zeroes,
    .discard = foreign_discard,
    .flush = foreign_flush,
    .block_status = vpc_block_status,
    .resize = foreign_resize,
    .get_info = vpc_get_info,
    .granularity = vpc_granularity,
};
