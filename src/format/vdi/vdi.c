/*
 * vdi.c - the read-only VirtualBox VDI format driver (static and dynamic
 * images).
 *
 * Layout in vdi.h. Differencing images (a parent UUID) and per-block extra
 * data are refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/foreign.h"
#include "format/vdi/vdi.h"
#include "util/util.h"

struct vdi_state {
    struct foreign_state base;   /* table: map */
    uint32_t block_size;
    uint32_t nblocks;
    uint64_t data_off;
    uint32_t *map;
    enum vdi_type type;
};

/* The header fields this driver relies on, validated (hdr: 512 bytes). */
static int
check_header(struct vmc_image *img, const uint8_t *hdr, uint64_t file_len,
             struct vmc_error *err)
{
    static const uint8_t zero_uuid[16];
    uint32_t bmap_off = le32_load(hdr + VDI_H_BMAP_OFF);
    uint32_t data_off = le32_load(hdr + VDI_H_DATA_OFF);
    uint32_t bs = le32_load(hdr + VDI_H_BLOCK_SIZE);
    uint32_t n = le32_load(hdr + VDI_H_BLOCKS);
    uint32_t type = le32_load(hdr + VDI_H_TYPE);
    uint64_t disk = le64_load(hdr + VDI_H_DISK_SIZE);
    uint64_t bmap_len = (uint64_t)n * 4;
    const char *bad = NULL;

    if (le32_load(hdr + VDI_H_SIGNATURE) != VDI_SIGNATURE) {
        bad = "signature missing";
    } else if (le32_load(hdr + VDI_H_VERSION) != VDI_VERSION_1_1) {
        return vmc_error_set(err, -ENOTSUP, "'%s': unsupported VDI version "
                             "%#" PRIx32, img->filename,
                             le32_load(hdr + VDI_H_VERSION));
    } else if (type != VDI_DYNAMIC && type != VDI_STATIC) {
        return vmc_error_set(err, -ENOTSUP, "'%s': unsupported VDI image type "
                             "%" PRIu32 " (only static and dynamic)",
                             img->filename, type);
    } else if (memcmp(hdr + VDI_H_UUID_LINK, zero_uuid, 16) ||
               memcmp(hdr + VDI_H_UUID_PARENT, zero_uuid, 16)) {
        return vmc_error_set(err, -ENOTSUP, "'%s': differencing VDI images "
                             "are not supported", img->filename);
    } else if (le32_load(hdr + VDI_H_SECTOR) != 512) {
        bad = "sector size is not 512";
    } else if (!is_power_of_2(bs) || bs < 512 || bs > VDI_MAX_BLOCK) {
        bad = "block size is not a power of two from 512 bytes to 256 MiB";
    } else if (le32_load(hdr + VDI_H_BLOCK_EXTRA) != 0) {
        return vmc_error_set(err, -ENOTSUP, "'%s': VDI blocks with extra "
                             "data are not supported", img->filename);
    } else if (bmap_off % 512 || data_off % 512 || bmap_off < VDI_HEADER_SIZE) {
        bad = "block map or data offset misplaced";
    } else if (!foreign_in_file(bmap_off, bmap_len, file_len) ||
               bmap_off + bmap_len > data_off) {
        bad = "block map is outside the file or overlaps the data";
    } else if (disk > (uint64_t)n * bs) {
        bad = "disk size exceeds the block map";
    }
    if (bad) {
        return vmc_error_set(err, -EUCLEAN, "'%s': invalid VDI header: %s",
                             img->filename, bad);
    }
    return 0;
}

/* Load the block map and check every allocated entry: inside the file,
 * and no data block used twice. */
static int
load_map(struct vmc_image *img, struct vdi_state *s, uint64_t bmap_off,
         uint64_t file_len, struct vmc_error *err)
{
    uint64_t len = (uint64_t)s->nblocks * 4, room = 0;
    uint8_t *used;
    uint32_t i;
    int r;

    if (len > img->table_budget) {
        return vmc_error_set(err, -ENOMEM, "'%s': the VDI block map (%" PRIu64
                             " KiB) exceeds the table memory limit",
                             img->filename, len >> 10);
    }
    if (file_len > s->data_off) {
        room = (file_len - s->data_off) / s->block_size;
    }
    s->map = malloc(len ? len : 1);
    s->base.table = s->map;
    used = calloc(room / 8 + 1, 1);
    if (!s->map || !used) {
        free(used);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = hio_pread(img->file, s->map, len, bmap_off);
    if (r < 0) {
        free(used);
        return vmc_error_set(err, r, "'%s': cannot read the VDI block map: %s",
                             img->filename, strerror(-r));
    }
    for (i = 0; i < s->nblocks; i++) {
        uint32_t e = le32_load(&s->map[i]);

        s->map[i] = e;
        if (e >= VDI_FIRST_FREE) {
            continue;
        }
        if (e >= room || (used[e / 8] & (1 << (e % 8)))) {
            r = vmc_error_set(err, -EUCLEAN, "'%s': VDI block %" PRIu32
                              " maps to data block %" PRIu32 ", %s",
                              img->filename, i, e, e >= room ?
                              "past the end of the file" : "used twice");
            break;
        }
        used[e / 8] |= (uint8_t)(1 << (e % 8));
    }
    free(used);
    img->table_bytes = len;
    return r;
}

/* The source of the run at @off (foreign_run_fn): a mapped block is in
 * the file, an unmapped one reads as zeros. */
static int
vdi_run(struct vmc_image *img, uint64_t off, uint64_t len,
        enum foreign_src *src, uint64_t *host, uint64_t *run)
{
    const struct vdi_state *s = img->priv;
    uint64_t in_block = off % s->block_size;
    uint32_t e = s->map[off / s->block_size];

    *run = MIN(len, s->block_size - in_block);
    *src = e >= VDI_FIRST_FREE ? FOREIGN_ZERO : FOREIGN_FILE;
    *host = s->data_off + (uint64_t)e * s->block_size + in_block;
    return 0;
}

static uint64_t
vdi_granularity(const struct vmc_image *img)
{
    const struct vdi_state *s = img->priv;

    return s->block_size;
}

static void
vdi_get_info(const struct vmc_image *img, struct vmc_image_info *info)
{
    const struct vdi_state *s = img->priv;

    info->cluster_size = s->block_size;
}

static int
vdi_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    struct vdi_state *s;
    uint64_t file_len;
    uint8_t hdr[VDI_HEADER_SIZE];
    int r = foreign_open_begin(img, flags, sizeof(*s), vdi_run, &file_len,
                               err);

    if (r == 0) {
        r = hio_pread(img->file, hdr, sizeof(hdr), 0);
    } else {
        return r;
    }
    if (r < 0) {
        return vmc_error_set(err, r, "cannot read '%s': %s", img->filename,
                             strerror(-r));
    }
    if (file_len < VDI_HEADER_SIZE) {
        return vmc_error_set(err, -EUCLEAN, "'%s': too short for a VDI image",
                             img->filename);
    }
    r = check_header(img, hdr, file_len, err);
    if (r < 0) {
        return r;
    }
    s = img->priv;
    s->base.holes_read_zero = true;
    s->type = (enum vdi_type)le32_load(hdr + VDI_H_TYPE);
    s->block_size = le32_load(hdr + VDI_H_BLOCK_SIZE);
    s->nblocks = le32_load(hdr + VDI_H_BLOCKS);
    s->data_off = le32_load(hdr + VDI_H_DATA_OFF);
    /* odd sizes (VBoxManage convertfromraw) round up to a sector */
    img->size = align_up(le64_load(hdr + VDI_H_DISK_SIZE), 512);
    return load_map(img, s, le32_load(hdr + VDI_H_BMAP_OFF), file_len, err);
}

const struct format_ops vdi_ops = FOREIGN_OPS("vdi", VMC_FMT_VDI, vdi_open, foreign_block_status,
                vdi_get_info, vdi_granularity);
