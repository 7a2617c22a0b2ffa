/*
 * vhdx-meta.c - the VHDX headers, region table, log check and metadata
 * region (vhdx.h): everything the data path relies on, checked first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/foreign.h"
#include "format/vhdx/vhdx.h"
#include "util/util.h"

static unsigned
hex_digit(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

void
vhdx_guid_store(uint8_t *disk, const char *text)
{
    static const uint8_t order[16] = {
        3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    uint8_t want[16] = { 0 };
    unsigned i = 0;

    for (; *text && i < 32; text++) {
        if (*text != '-') {
            want[i / 2] = (uint8_t)((i % 2 ? want[i / 2] << 4 : 0) |
                                    hex_digit(*text));
            i++;
        }
    }
    for (i = 0; i < 16; i++) {
        disk[order[i]] = want[i];
    }
}

/* Is the on-disk GUID @disk the one written as @text? */
static bool
guid_is(const uint8_t *disk, const char *text)
{
    uint8_t want[16];

    vhdx_guid_store(want, text);
    return !memcmp(disk, want, 16);
}

uint32_t
vhdx_crc32c(const uint8_t *buf, size_t len, size_t csum_off)
{
    uint32_t crc = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < len; i++) {
        uint8_t b = (i >= csum_off && i < csum_off + 4) ? 0 : buf[i];

        crc ^= b;
        for (k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
        }
    }
    return ~crc;
}

static int
read_at(struct vmc_image *img, void *buf, size_t len, uint64_t off,
        const char *what, struct vmc_error *err)
{
    int r = hio_pread(img->file, buf, len, off);

    if (r < 0) {
        return vmc_error_set(err, r, "'%s': cannot read the VHDX %s: %s",
                             img->filename, what, strerror(-r));
    }
    return 0;
}

static bool
header_valid(const uint8_t *h)
{
    return !memcmp(h, "head", 4) &&
           vhdx_crc32c(h, VHDX_HEADER_SIZE, VHDX_HD_CHECKSUM) ==
           le32_load(h + VHDX_HD_CHECKSUM);
}

/* Is any 4 KiB step of the log an entry of the current log GUID? */
static int
log_has_entries(struct vmc_image *img, const uint8_t *guid, uint64_t off,
                uint64_t len, bool *found, struct vmc_error *err)
{
    uint8_t e[64];
    uint64_t pos;
    int r;

    *found = false;
    for (pos = 0; pos < len && !*found; pos += 4096) {
        r = read_at(img, e, sizeof(e), off + pos, "log", err);
        if (r < 0) {
            return r;
        }
        *found = !memcmp(e, "loge", 4) && !memcmp(e + 32, guid, 16);
    }
    return 0;
}

/* The current header: log location; a non-empty log is refused. */
static int
read_headers(struct vmc_image *img, uint64_t file_len, struct vhdx_layout *l,
             struct vmc_error *err)
{
    static const uint8_t zero[16];
    uint8_t *h = malloc(2 * VHDX_HEADER_SIZE), *cur = NULL;
    bool found = false;
    int r = h ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");

    if (r == 0) {
        r = read_at(img, h, VHDX_HEADER_SIZE, VHDX_HEADER1_OFF, "header",
                    err);
    }
    if (r == 0) {
        r = read_at(img, h + VHDX_HEADER_SIZE, VHDX_HEADER_SIZE,
                    VHDX_HEADER2_OFF, "header", err);
    }
    if (r == 0) {
        uint8_t *a = h, *b = h + VHDX_HEADER_SIZE;

        cur = header_valid(a) ? a : NULL;
        if (header_valid(b) && (!cur || le64_load(b + VHDX_HD_SEQUENCE) >
                                        le64_load(a + VHDX_HD_SEQUENCE))) {
            cur = b;
        }
        if (!cur) {
            r = vmc_error_set(err, -EUCLEAN, "'%s': neither VHDX header is "
                              "valid (signature or CRC-32C)", img->filename);
        } else if (le16_load(cur + VHDX_HD_VERSION) != 1 ||
                   le16_load(cur + VHDX_HD_LOG_VERSION) != 0) {
            r = vmc_error_set(err, -ENOTSUP, "'%s': unsupported VHDX version "
                              "%u (log version %u)", img->filename,
                              le16_load(cur + VHDX_HD_VERSION),
                              le16_load(cur + VHDX_HD_LOG_VERSION));
        }
    }
    if (r == 0) {
        l->log_len = le32_load(cur + VHDX_HD_LOG_LENGTH);
        l->log_off = le64_load(cur + VHDX_HD_LOG_OFFSET);
        if (l->log_off % VHDX_MiB || l->log_len % VHDX_MiB ||
            l->log_off < VHDX_MiB ||
            !foreign_in_file(l->log_off, l->log_len, file_len)) {
            r = vmc_error_set(err, -EUCLEAN, "'%s': VHDX log is misplaced or "
                              "outside the file", img->filename);
        }
    }
    if (r == 0 && memcmp(cur + VHDX_HD_LOG_GUID, zero, 16)) {
        r = log_has_entries(img, cur + VHDX_HD_LOG_GUID, l->log_off,
                            l->log_len, &found, err);
        if (r == 0 && found) {
            r = vmc_error_set(err, -EUCLEAN, "'%s': VHDX has an unreplayed "
                              "log; open it once in Hyper-V or qemu-img check "
                              "-r all", img->filename);
        }
    }
    free(h);
    return r;
}

/* A region must be MiB-aligned, past the headers and inside the file. */
static bool
region_ok(uint64_t off, uint64_t len, uint64_t file_len)
{
    return off % VHDX_MiB == 0 && len % VHDX_MiB == 0 && len &&
           off >= VHDX_MiB && foreign_in_file(off, len, file_len);
}

static bool
overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* One region table (64 KiB at @off): BAT and metadata regions. */
static int
parse_regions(struct vmc_image *img, const uint8_t *rt, uint64_t file_len,
              struct vhdx_layout *l, struct vmc_error *err)
{
    uint32_t n = le32_load(rt + VHDX_RT_COUNT), i;

    for (i = 0; i < n; i++) {
        const uint8_t *e = rt + VHDX_RT_ENTRIES + 32 * (size_t)i;
        uint64_t off = le64_load(e + 16), len = le32_load(e + 24);

        if (guid_is(e, VHDX_GUID_BAT) && !l->bat_len) {
            l->bat_off = off;
            l->bat_len = len;
        } else if (guid_is(e, VHDX_GUID_METADATA) && !l->meta_len) {
            l->meta_off = off;
            l->meta_len = len;
        } else if (le32_load(e + 28) & 1) {
            return vmc_error_set(err, -ENOTSUP, "'%s': VHDX has an unknown "
                                 "required region", img->filename);
        } else {
            continue;
        }
        if (!region_ok(off, len, file_len)) {
            return vmc_error_set(err, -EUCLEAN, "'%s': VHDX region at %"
                                 PRIu64 " (%" PRIu64 " bytes) is misplaced "
                                 "or outside the file", img->filename, off,
                                 len);
        }
    }
    if (!l->bat_len || !l->meta_len) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHDX region table lacks "
                             "the BAT or the metadata region", img->filename);
    }
    if (overlaps(l->bat_off, l->bat_len, l->meta_off, l->meta_len) ||
        (l->log_len && (overlaps(l->bat_off, l->bat_len, l->log_off,
                                 l->log_len) ||
                        overlaps(l->meta_off, l->meta_len, l->log_off,
                                 l->log_len)))) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHDX regions overlap",
                             img->filename);
    }
    return 0;
}

static int
read_regions(struct vmc_image *img, uint64_t file_len, struct vhdx_layout *l,
             struct vmc_error *err)
{
    uint8_t *rt = malloc(VHDX_RT_SIZE);
    int r = rt ? 0 : vmc_error_set(err, -ENOMEM, "out of memory"), copy;

    for (copy = 0; r == 0 && copy < 2; copy++) {
        r = read_at(img, rt, VHDX_RT_SIZE, copy ? VHDX_RT2_OFF : VHDX_RT1_OFF,
                    "region table", err);
        if (r == 0 && !memcmp(rt, "regi", 4) &&
            vhdx_crc32c(rt, VHDX_RT_SIZE, VHDX_RT_CHECKSUM) ==
            le32_load(rt + VHDX_RT_CHECKSUM) &&
            le32_load(rt + VHDX_RT_COUNT) <= VHDX_MAX_ENTRIES) {
            r = parse_regions(img, rt, file_len, l, err);
            free(rt);
            return r;
        }
    }
    free(rt);
    return r < 0 ? r : vmc_error_set(err, -EUCLEAN, "'%s': neither VHDX "
                                     "region table is valid (signature, "
                                     "CRC-32C or entry count)", img->filename);
}

/* The parent locator item: the relative_path entry, confined. */
static int
parse_parent(struct vmc_image *img, const uint8_t *p, uint32_t len,
             struct vmc_error *err)
{
    uint32_t n, i;

    if (len < 20 || !guid_is(p, VHDX_GUID_LOCATOR_VHDX)) {
        return vmc_error_set(err, -ENOTSUP, "'%s': unknown VHDX parent "
                             "locator type", img->filename);
    }
    n = le16_load(p + 18);
    for (i = 0; i < n && 20 + 12 * (uint64_t)(i + 1) <= len; i++) {
        const uint8_t *e = p + 20 + 12 * (size_t)i;
        uint64_t ko = le32_load(e), vo = le32_load(e + 4);
        uint32_t kl = le16_load(e + 8), vl = le16_load(e + 10);
        char *key, *val, *c;

        if (ko + kl > len || vo + vl > len) {
            break;
        }
        key = foreign_utf16_to_utf8(p + ko, kl, true);
        if (!key || strcmp(key, "relative_path")) {
            free(key);
            continue;
        }
        free(key);
        val = foreign_utf16_to_utf8(p + vo, vl, true);
        if (!val) {
            return vmc_error_set(err, -EUCLEAN, "'%s': VHDX parent path is "
                                 "not valid UTF-16", img->filename);
        }
        for (c = val; *c; c++) {
            *c = *c == '\\' ? '/' : *c;
        }
        return foreign_set_parent(img, val, "vhdx", err);
    }
    return vmc_error_set(err, -ENOTSUP, "'%s': differencing VHDX without a "
                         "valid relative_path parent locator (absolute "
                         "parent names are not followed)", img->filename);
}

/* Copy metadata item @e (a table entry) into @out (exactly @want bytes,
 * or up to 64 KiB for want == 0). */
static int
item_bytes(struct vmc_image *img, const struct vhdx_layout *l,
           const uint8_t *e, uint8_t *out, uint32_t want, uint32_t *len,
           struct vmc_error *err)
{
    uint64_t off = le32_load(e + 16);

    *len = le32_load(e + 20);
    if ((want && *len != want) || (!want && *len > VHDX_RT_SIZE) ||
        off < VHDX_RT_SIZE || off + *len > l->meta_len) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHDX metadata item at %"
                             PRIu64 " (%" PRIu32 " bytes) is invalid",
                             img->filename, off, *len);
    }
    return read_at(img, out, *len, l->meta_off + off, "metadata", err);
}

/* The metadata items this driver needs, and no unknown required one. */
static int
read_metadata(struct vmc_image *img, struct vhdx_layout *l,
              struct vmc_error *err)
{
    uint8_t *t = malloc(VHDX_RT_SIZE), *item = malloc(VHDX_RT_SIZE);
    unsigned seen = 0;
    uint32_t n = 0, i, len;
    int r = t && item ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");

    if (r == 0) {
        r = read_at(img, t, VHDX_RT_SIZE, l->meta_off, "metadata table", err);
    }
    if (r == 0 && (memcmp(t, "metadata", 8) ||
                   (n = le16_load(t + VHDX_MT_COUNT)) > VHDX_MAX_ENTRIES)) {
        r = vmc_error_set(err, -EUCLEAN, "'%s': invalid VHDX metadata table",
                          img->filename);
    }
    for (i = 0; r == 0 && i < n; i++) {
        const uint8_t *e = t + VHDX_MT_ENTRIES + 32 * (size_t)i;

        if (guid_is(e, VHDX_GUID_FILE_PARAMS)) {
            r = item_bytes(img, l, e, item, 8, &len, err);
            l->block_size = le32_load(item);
            l->has_parent = le32_load(item + 4) & 2;
            seen |= 1;
        } else if (guid_is(e, VHDX_GUID_VIRTUAL_SIZE)) {
            r = item_bytes(img, l, e, item, 8, &len, err);
            l->size = le64_load(item);
            seen |= 2;
        } else if (guid_is(e, VHDX_GUID_LSECTOR_SIZE)) {
            r = item_bytes(img, l, e, item, 4, &len, err);
            l->sector_size = le32_load(item);
            seen |= 4;
        } else if (guid_is(e, VHDX_GUID_PARENT_LOC)) {
            r = item_bytes(img, l, e, item, 0, &len, err);
            seen |= 8;
            if (r == 0) {
                r = parse_parent(img, item, len, err);
            }
        } else if ((le32_load(e + 24) & VHDX_META_REQUIRED) &&
                   !guid_is(e, VHDX_GUID_PSECTOR_SIZE) &&
                   !guid_is(e, VHDX_GUID_DISK_ID)) {
            r = vmc_error_set(err, -ENOTSUP, "'%s': VHDX has an unknown "
                              "required metadata item", img->filename);
        }
    }
    free(t);
    free(item);
    if (r == 0 && (seen & 7) != 7) {
        r = vmc_error_set(err, -EUCLEAN, "'%s': VHDX metadata lacks the "
                          "block size, virtual size or sector size",
                          img->filename);
    }
    if (r == 0 && l->has_parent != ((seen & 8) != 0)) {
        r = vmc_error_set(err, -EUCLEAN, "'%s': VHDX %s", img->filename,
                          l->has_parent ? "differencing file without a "
                          "parent locator" : "parent locator in a file "
                          "without a parent");
    }
    return r;
}

int
vhdx_read_layout(struct vmc_image *img, uint64_t file_len,
                 struct vhdx_layout *l, struct vmc_error *err)
{
    uint8_t id[8];
    int r;

    memset(l, 0, sizeof(*l));
    if (file_len < VHDX_MiB) {
        return vmc_error_set(err, -EUCLEAN, "'%s': too short for a VHDX "
                             "image", img->filename);
    }
    r = read_at(img, id, sizeof(id), 0, "file identifier", err);
    if (r == 0 && memcmp(id, "vhdxfile", 8)) {
        r = vmc_error_set(err, -EUCLEAN, "'%s': VHDX file identifier "
                          "missing", img->filename);
    }
    if (r == 0) {
        r = read_headers(img, file_len, l, err);
    }
    if (r == 0) {
        r = read_regions(img, file_len, l, err);
    }
    if (r == 0) {
        r = read_metadata(img, l, err);
    }
    if (r < 0) {
        return r;
    }
    if (!is_power_of_2(l->block_size) || l->block_size < VHDX_MiB ||
        l->block_size > 256 * VHDX_MiB) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHDX block size %" PRIu32
                             " is not a power of two from 1 to 256 MiB",
                             img->filename, l->block_size);
    }
    if (l->sector_size != 512 && l->sector_size != 4096) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHDX logical sector size %"
                             PRIu32 " is not 512 or 4096", img->filename,
                             l->sector_size);
    }
    if (l->size % l->sector_size || l->size > VHDX_MAX_SIZE) {
        return vmc_error_set(err, -EUCLEAN, "'%s': VHDX virtual size %" PRIu64
                             " is not a multiple of the sector size or over "
                             "64 TiB", img->filename, l->size);
    }
    return 0;
}
