/*
 * vhdx-write.c - the VHDX writer (writer.h): dynamic and fixed files with
 * an empty log (fields in vhdx.h).
 *
 * Layout: file identifier; headers at 64 and 128 KiB (sequence numbers 1
 * and 2, both valid, log GUID zero: nothing to replay); both region
 * tables; a 1 MiB log at 1 MiB (never written); the metadata region at
 * 2 MiB (table, then the items from 64 KiB on: file parameters, virtual
 * size, virtual disk id, logical sector size 512, physical sector size
 * 4096); the BAT at 3 MiB; then the payload blocks, 1 MiB aligned. A
 * dynamic file gets its blocks in the order they are first written
 * (blocks never written stay NOT_PRESENT and read as zeros); a fixed one
 * has every block FULLY_PRESENT in order, unwritten ones left as holes of
 * the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/vhdx/vhdx.h"
#include "format/writer.h"
#include "util/util.h"

#define BLOCK_DEFAULT   (32u << 20)
#define LOG_OFF         (1 * VHDX_MiB)
#define LOG_LEN         VHDX_MiB
#define META_OFF        (2 * VHDX_MiB)
#define META_LEN        VHDX_MiB
#define BAT_OFF         (3 * VHDX_MiB)
#define SECTOR          512u
#define ITEMS_OFF       65536u       /* first metadata item, in the region */

struct vhdx_writer {
    bool fixed;
    uint64_t nblocks;
    uint64_t chunk_ratio;
    uint64_t nbat;
    uint64_t *bat;
    uint64_t bat_len;         /* region length, MiB multiple */
    uint64_t data_off;
    uint64_t next;
};

static int
vhdx_w_begin(struct vmc_writer *w, struct vmc_error *err)
{
    struct vhdx_writer *v;
    uint32_t bs = w->o.block_size ? w->o.block_size : BLOCK_DEFAULT;
    bool fixed = writer_subformat_is(w, "fixed", false);

    if (!fixed && !writer_subformat_is(w, "dynamic", true)) {
        return writer_bad_subformat(w, "dynamic or fixed", err);
    }
    if (!is_power_of_2(bs) || bs < VHDX_MiB || bs > 256 * VHDX_MiB) {
        return vmc_error_set(err, -EINVAL, "VHDX block size %" PRIu32 " is "
                             "not a power of two from 1 to 256 MiB", bs);
    }
    if (w->size > VHDX_MAX_SIZE) {
        return vmc_error_set(err, -EFBIG, "'%s': %" PRIu64 " bytes is more "
                             "than a VHDX holds (64 TiB)", w->path, w->size);
    }
    if (w->size == 0) {
        return vmc_error_set(err, -EINVAL, "'%s': an empty %s image is not "
                             "read back by other tools: refused", w->path,
                             "VHDX");
    }
    v = calloc(1, sizeof(*v));
    if (!v) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    w->priv = v;
    w->block = bs;
    v->fixed = fixed;
    v->nblocks = DIV_ROUND_UP(w->size, bs);
    v->chunk_ratio = ((uint64_t)1 << 23) * SECTOR / bs;
    v->nbat = v->nblocks + (v->nblocks ? (v->nblocks - 1) / v->chunk_ratio
                                       : 0);
    v->bat_len = align_up(MAX(v->nbat * 8, 1), VHDX_MiB);
    v->data_off = BAT_OFF + v->bat_len;
    v->next = v->data_off;
    v->bat = calloc(MAX(v->nbat, 1), 8);
    if (!v->bat) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

static int
vhdx_w_alloc(struct vmc_writer *w, uint64_t b, uint64_t *host)
{
    struct vhdx_writer *v = w->priv;

    if (v->fixed) {
        *host = v->data_off + b * w->block;
        return 0;
    }
    v->bat[b + b / v->chunk_ratio] = v->next | VHDX_FULLY_PRESENT;
    *host = v->next;
    v->next += w->block;
    return 0;
}

/* File identifier, both headers and both region tables (the first
 * 320 KiB of the file) into @f. */
static void
fill_front(const struct vhdx_writer *v, uint8_t *f)
{
    static const char creator[] = "vmclone";
    uint8_t *h, *rt, *e;
    size_t i;
    int k;

    memcpy(f, "vhdxfile", 8);
    for (i = 0; i < sizeof(creator) - 1; i++) {
        le16_store(f + 8 + 2 * i, (uint16_t)creator[i]);
    }
    for (k = 0; k < 2; k++) {
        h = f + (k ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);
        memcpy(h, "head", 4);
        le64_store(h + VHDX_HD_SEQUENCE, (uint64_t)k + 1);
        writer_random_id(h + VHDX_HD_FILE_GUID);
        writer_random_id(h + VHDX_HD_DATA_GUID);
        le16_store(h + VHDX_HD_VERSION, 1);
        le32_store(h + VHDX_HD_LOG_LENGTH, LOG_LEN);
        le64_store(h + VHDX_HD_LOG_OFFSET, LOG_OFF);
        le32_store(h + VHDX_HD_CHECKSUM,
                   vhdx_crc32c(h, VHDX_HEADER_SIZE, VHDX_HD_CHECKSUM));

        rt = f + (k ? VHDX_RT2_OFF : VHDX_RT1_OFF);
        memcpy(rt, "regi", 4);
        le32_store(rt + VHDX_RT_COUNT, 2);
        e = rt + VHDX_RT_ENTRIES;
        vhdx_guid_store(e, VHDX_GUID_BAT);
        le64_store(e + 16, BAT_OFF);
        le32_store(e + 24, (uint32_t)v->bat_len);
        le32_store(e + 28, 1);
        e += 32;
        vhdx_guid_store(e, VHDX_GUID_METADATA);
        le64_store(e + 16, META_OFF);
        le32_store(e + 24, META_LEN);
        le32_store(e + 28, 1);
        le32_store(rt + VHDX_RT_CHECKSUM,
                   vhdx_crc32c(rt, VHDX_RT_SIZE, VHDX_RT_CHECKSUM));
    }
}

/* The metadata table and its five items into @m (ITEMS_OFF + 64). */
static void
fill_metadata(const struct vmc_writer *w, const struct vhdx_writer *v,
              uint8_t *m)
{
    static const struct {
        const char *guid;
        uint32_t len, flags;
    } items[] = {
        { VHDX_GUID_FILE_PARAMS, 8, VHDX_META_REQUIRED },
        { VHDX_GUID_VIRTUAL_SIZE, 8, VHDX_META_REQUIRED | VHDX_META_VIRTUAL },
        { VHDX_GUID_DISK_ID, 16, VHDX_META_REQUIRED | VHDX_META_VIRTUAL },
        { VHDX_GUID_LSECTOR_SIZE, 4, VHDX_META_REQUIRED | VHDX_META_VIRTUAL },
        { VHDX_GUID_PSECTOR_SIZE, 4, VHDX_META_REQUIRED | VHDX_META_VIRTUAL },
    };
    uint32_t off = ITEMS_OFF;
    uint8_t *p = m + ITEMS_OFF;
    size_t i;

    memcpy(m, "metadata", 8);
    le16_store(m + VHDX_MT_COUNT, (uint16_t)ARRAY_SIZE(items));
    for (i = 0; i < ARRAY_SIZE(items); i++) {
        uint8_t *e = m + VHDX_MT_ENTRIES + 32 * i;

        vhdx_guid_store(e, items[i].guid);
        le32_store(e + 16, off);
        le32_store(e + 20, items[i].len);
        le32_store(e + 24, items[i].flags);
        off += items[i].len;
    }
    le32_store(p, (uint32_t)w->block);
    le32_store(p + 4, v->fixed ? VHDX_FP_LEAVE_ALLOCATED : 0);
    le64_store(p + 8, w->size);
    writer_random_id(p + 16);
    le32_store(p + 32, SECTOR);
    le32_store(p + 36, 4096);
}

static int
vhdx_w_finish(struct vmc_writer *w, struct vmc_error *err)
{
    struct vhdx_writer *v = w->priv;
    size_t front = VHDX_RT2_OFF + VHDX_RT_SIZE, meta = ITEMS_OFF + 64;
    uint8_t *f = calloc(1, front), *m = calloc(1, meta);
    uint64_t b, end = v->fixed ? v->data_off + v->nblocks * w->block
                               : v->next;
    int r = f && m ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");

    for (b = 0; r == 0 && b < v->nblocks; b++) {
        if (v->fixed) {
            v->bat[b + b / v->chunk_ratio] = (v->data_off + b * w->block) |
                                             VHDX_FULLY_PRESENT;
        }
    }
    for (b = 0; r == 0 && b < v->nbat; b++) {
        le64_store(&v->bat[b], v->bat[b]);
    }
    if (r == 0 && (r = hio_truncate(w->file, end)) < 0) {
        vmc_error_set(err, r, "cannot extend '%s': %s", w->path,
                      strerror(-r));
    }
    if (r == 0) {
        fill_front(v, f);
        fill_metadata(w, v, m);
        r = writer_pwrite(w, v->bat, v->nbat * 8, BAT_OFF, err);
    }
    if (r == 0) {
        r = writer_pwrite(w, m, meta, META_OFF, err);
    }
    if (r == 0) {
        r = writer_pwrite(w, f, front, 0, err);
    }
    free(f);
    free(m);
    return r;
}

static void
vhdx_w_release(struct vmc_writer *w)
{
    struct vhdx_writer *v = w->priv;

    free(v->bat);
    free(v);
}

const struct writer_ops vhdx_writer_ops = {
    .format = VMC_FMT_VHDX,
    .begin = vhdx_w_begin,
    .alloc = vhdx_w_alloc,
    .finish = vhdx_w_finish,
    .release = vhdx_w_release,
};
