/*
 * vpc-header.c - the VHD footer, dynamic header, BAT and parent locators
 * (vpc.h): everything is validated before the data path trusts it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/foreign.h"
#include "format/vpc/vpc.h"
#include "util/util.h"

/* Largest block size accepted (the specification's blocks are 512 KiB or
 * 2 MiB; larger ones only make the per-block bitmap huge). */
#define VPC_MAX_BLOCK_SIZE  (256u << 20)
/* Guest sizes are off_t, whole sectors. */
#define VPC_MAX_SIZE        ((uint64_t)INT64_MAX & ~511ull)
/* A parent locator longer than this is not a file name. */
#define VPC_MAX_LOCATOR     4096u

uint32_t
vpc_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (i < csum_off || i >= csum_off + 4) {
            sum += buf[i];
        }
    }
    return ~sum;
}

int
vpc_read_footer(struct vmc_image *img, uint64_t file_len,
                uint8_t footer[VPC_FOOTER_SIZE], struct vmc_error *err)
{
    int r;

    if (file_len < VPC_FOOTER_SIZE) {
        return vmc_error_set(err, -EUCLEAN, "'%s': too short for a VHD "
                             "image", img->filename);
    }
    /* The copy at the start (dynamic disks) first, then the footer. */
    r = hio_pread(img->file, footer, VPC_FOOTER_SIZE, 0);
    if (r == 0 && memcmp(footer, "conectix", 8)) {
        r = hio_pread(img->file, footer, VPC_FOOTER_SIZE,
                      file_len - VPC_FOOTER_SIZE);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "'%s': cannot read the VHD footer: %s",
                             img->filename, strerror(-r));
    }
    if (memcmp(footer, "conectix", 8)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': no VHD footer (cookie "
                             "'conectix' missing)", img->filename);
    }
    if (vpc_checksum(footer, VPC_FOOTER_SIZE, VPC_F_CHECKSUM) !=
        be32_load(footer + VPC_F_CHECKSUM)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD footer checksum is "
                             "wrong", img->filename);
    }
    return 0;
}

uint64_t
vpc_virtual_size(const uint8_t footer[VPC_FOOTER_SIZE])
{
    static const char *const size_apps[] = {
        "win ", "qem2", "d2v ", "CTXS", "tap",
    };
    uint64_t chs = (uint64_t)be16_load(footer + VPC_F_CYLINDERS) *
                   footer[VPC_F_CYLINDERS + 2] * footer[VPC_F_CYLINDERS + 3];
    bool use_chs = true;
    size_t i;

    /* Virtual PC and QEMU's default writer size the disk by its CHS
     * geometry; Hyper-V and others by the size field. */
    for (i = 0; i < sizeof(size_apps) / sizeof(size_apps[0]); i++) {
        /* four bytes each: "tap" with its NUL */
        if (!memcmp(footer + VPC_F_CREATOR, size_apps[i], 4)) {
            use_chs = false;
        }
    }
    if (!use_chs || chs == VPC_MAX_GEOMETRY) {
        return be64_load(footer + VPC_F_CUR_SIZE) / 512 * 512;
    }
    return chs * 512;
}

/* Does [a, a+alen) overlap [b, b+blen)? */
static bool
overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Load the BAT and check each allocated block lies inside the file and
 * off the metadata (footer copy, dynamic header, BAT). */
static int
load_bat(struct vmc_image *img, struct vpc_state *s, uint64_t hdr_off,
         uint64_t bat_off, uint64_t file_len, struct vmc_error *err)
{
    uint64_t bat_len = (uint64_t)s->nbat * 4, blk = s->bitmap_size +
                       (uint64_t)s->block_size;
    uint8_t *raw;
    uint32_t i;
    int r;

    if (bat_len > img->table_budget) {
        return vmc_error_set(err, -ENOMEM, "'%s': the VHD block table "
                             "(%" PRIu64 " KiB) exceeds the table memory "
                             "limit", img->filename, bat_len >> 10);
    }
    if (!foreign_in_file(bat_off, bat_len, file_len) ||
        overlaps(bat_off, bat_len, 0, VPC_FOOTER_SIZE) ||
        overlaps(bat_off, bat_len, hdr_off, VPC_DYN_SIZE)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD block table at %"
                             PRIu64 " is outside the file or overlaps the "
                             "headers", img->filename, bat_off);
    }
    raw = malloc(bat_len ? bat_len : 1);
    s->bat = malloc(bat_len ? bat_len : 1);
    s->base.table = s->bat;
    if (!raw || !s->bat) {
        free(raw);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = hio_pread(img->file, raw, bat_len, bat_off);
    if (r < 0) {
        free(raw);
        return vmc_error_set(err, r, "'%s': cannot read the VHD block table: "
                             "%s", img->filename, strerror(-r));
    }
    for (i = 0; i < s->nbat; i++) {
        uint64_t host;

        s->bat[i] = be32_load(raw + 4 * (size_t)i);
        host = (uint64_t)s->bat[i] * 512;
        if (s->bat[i] != VPC_BAT_FREE &&
            (!foreign_in_file(host, blk, file_len) ||
             overlaps(host, blk, 0, VPC_FOOTER_SIZE) ||
             overlaps(host, blk, hdr_off, VPC_DYN_SIZE) ||
             overlaps(host, blk, bat_off, bat_len))) {
            r = vmc_error_set(err, -EUCLEAN, "'%s': VHD block %" PRIu32
                              " at %" PRIu64 " is outside the file or "
                              "overlaps the metadata", img->filename, i, host);
            break;
        }
    }
    free(raw);
    img->table_bytes = bat_len;
    return r;
}

/* Read one parent locator's name (W2ru: relative, UTF-16LE). */
static int
read_locator(struct vmc_image *img, const uint8_t *ent, uint64_t file_len,
             char **out, struct vmc_error *err)
{
    uint32_t len = be32_load(ent + 8);
    uint64_t off = be64_load(ent + 16);
    uint8_t *raw;
    char *p;
    int r;

    if (len == 0 || len > VPC_MAX_LOCATOR || !foreign_in_file(off, len,
                                                              file_len)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD parent locator "
                             "(%" PRIu32 " bytes at %" PRIu64 ") is outside "
                             "the file or too long", img->filename, len, off);
    }
    raw = malloc(len);
    if (!raw) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = hio_pread(img->file, raw, len, off);
    *out = r < 0 ? NULL : foreign_utf16_to_utf8(raw, len, true);
    free(raw);
    if (r < 0) {
        return vmc_error_set(err, r, "'%s': cannot read the VHD parent "
                             "locator: %s", img->filename, strerror(-r));
    }
    if (!*out) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD parent locator is "
                             "not valid UTF-16", img->filename);
    }
    for (p = *out; *p; p++) {
        if (*p == '\\') {
            *p = '/';
        }
    }
    return 0;
}

/* The parent of a differencing disk: its relative (W2ru) locator. Only
 * relative names are followed (absolute W2ku/MacX ones are refused). */
static int
open_parent_name(struct vmc_image *img, const uint8_t *dyn, uint64_t file_len,
                 struct vmc_error *err)
{
    char *name = NULL;
    int i, r;

    for (i = 0; i < 8; i++) {
        const uint8_t *ent = dyn + VPC_D_LOCATORS + 24 * i;

        if (!memcmp(ent, "W2ru", 4)) {
            r = read_locator(img, ent, file_len, &name, err);
            if (r < 0) {
                return r;
            }
            return foreign_set_parent(img, name, "vpc", err);
        }
    }
    return vmc_error_set(err, -ENOTSUP, "'%s': differencing VHD without a "
                         "relative parent locator (absolute parent names "
                         "are not followed)", img->filename);
}

int
vpc_open_dynamic(struct vmc_image *img, struct vpc_state *s,
                 const uint8_t *footer, uint64_t file_len,
                 struct vmc_error *err)
{
    uint64_t hdr_off = be64_load(footer + VPC_F_DATA_OFF), bat_off, blocks;
    uint8_t dyn[VPC_DYN_SIZE];
    int r;

    if (!foreign_in_file(hdr_off, VPC_DYN_SIZE, file_len)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD dynamic header "
                             "offset %" PRIu64 " is outside the file",
                             img->filename, hdr_off);
    }
    r = hio_pread(img->file, dyn, sizeof(dyn), hdr_off);
    if (r < 0) {
        return vmc_error_set(err, r, "'%s': cannot read the VHD dynamic "
                             "header: %s", img->filename, strerror(-r));
    }
    if (memcmp(dyn, "cxsparse", 8)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD dynamic header "
                             "cookie 'cxsparse' missing", img->filename);
    }
    if (vpc_checksum(dyn, sizeof(dyn), VPC_D_CHECKSUM) !=
        be32_load(dyn + VPC_D_CHECKSUM)) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD dynamic header "
                             "checksum is wrong", img->filename);
    }
    s->block_size = be32_load(dyn + VPC_D_BLOCK_SIZE);
    if (!is_power_of_2(s->block_size) || s->block_size < 512 ||
        s->block_size > VPC_MAX_BLOCK_SIZE) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD block size %" PRIu32
                             " is not a power of two from 512 bytes to 256 "
                             "MiB", img->filename, s->block_size);
    }
    s->bitmap_size = (uint32_t)align_up(s->block_size / 4096, 512);
    s->nbat = be32_load(dyn + VPC_D_ENTRIES);
    bat_off = be64_load(dyn + VPC_D_TABLE_OFF);
    blocks = img->size / s->block_size + (img->size % s->block_size != 0);
    if (blocks > s->nbat) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHD block table has %"
                             PRIu32 " entries, the disk size needs %" PRIu64,
                             img->filename, s->nbat, blocks);
    }
    r = load_bat(img, s, hdr_off, bat_off, file_len, err);
    if (r < 0) {
        return r;
    }
    s->bitmap = malloc(s->bitmap_size);
    s->base.bitmap = s->bitmap;
    if (!s->bitmap) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (s->type == VPC_DIFFERENCING) {
        return open_parent_name(img, dyn, file_len, err);
    }
    return 0;
}
