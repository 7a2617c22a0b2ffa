/*
 * vpc-write.c - the VHD writer (writer.h): fixed and dynamic disks.
 *
 * Size: like qemu-img, the guest size is rounded up to the nearest CHS
 * geometry (the specification's algorithm) and the footer's current size
 * is that geometry's size, so every reader agrees on it. A size above
 * what CHS can express (65535 x 16 x 255 sectors, about 127 GiB) gets the
 * maximal geometry, which readers take as "use the size field": it is
 * kept exact. With force_size=on the size is kept exact at any size: the
 * creator application is then "qem2", the mark QEMU reads as "the size
 * field is exact" (Hyper-V and our reader use the size field too).
 *
 * Dynamic layout: footer copy at 0, dynamic header at 512, BAT at 1536,
 * then the blocks in the order they are first written, each a sector
 * bitmap (all ones) placed so that the block's data is 4 KiB aligned,
 * then the footer. Fixed: the data, then the footer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/vpc/vpc.h"
#include "format/writer.h"
#include "util/util.h"

#define VPC_BLOCK_DEFAULT  (2u << 20)
/* QEMU's limit (2040 GiB): a dynamic disk's sectors fit 32 bits. */
#define VPC_WRITE_MAX      (2040ull << 30)
#define VPC_BAT_OFF        (VPC_FOOTER_SIZE + VPC_DYN_SIZE)
#define VPC_EPOCH          946684800     /* 2000-01-01 in Unix time */

struct vpc_writer {
    bool fixed;
    uint32_t bitmap_size;
    uint32_t nbat;
    uint32_t *bat;
    uint64_t next;            /* where the next block's bitmap goes */
    uint16_t cyls;
    uint8_t heads, secs;
};

/* The specification's geometry for @total sectors (rounding down). */
static void
chs_of(uint64_t total, uint16_t *c, uint8_t *h, uint8_t *s)
{
    uint64_t cth, heads, spt;

    if (total > VPC_MAX_GEOMETRY) {
        total = VPC_MAX_GEOMETRY;
    }
    if (total >= 65535ull * 16 * 63) {
        spt = 255;
        heads = 16;
        cth = total / spt;
    } else {
        spt = 17;
        cth = total / spt;
        heads = MAX((cth + 1023) / 1024, 4);
        if (cth >= heads * 1024 || heads > 16) {
            spt = 31;
            heads = 16;
            cth = total / spt;
        }
        if (cth >= heads * 1024) {
            spt = 63;
            heads = 16;
            cth = total / spt;
        }
    }
    *c = (uint16_t)(cth / heads);
    *h = (uint8_t)heads;
    *s = (uint8_t)spt;
}

/* Set the geometry and round w->size as described at the top. */
static void
size_geometry(struct vmc_writer *w, struct vpc_writer *v)
{
    uint64_t total = w->size / 512, i;

    chs_of(total, &v->cyls, &v->heads, &v->secs);
    if (w->o.force_size || total > VPC_MAX_GEOMETRY) {
        return;
    }
    for (i = 1; (uint64_t)v->cyls * v->heads * v->secs < total; i++) {
        chs_of(total + i, &v->cyls, &v->heads, &v->secs);
    }
    w->size = (uint64_t)v->cyls * v->heads * v->secs * 512;
}

static int
vpc_w_begin(struct vmc_writer *w, struct vmc_error *err)
{
    struct vpc_writer *v;
    uint32_t bs = w->o.block_size ? w->o.block_size : VPC_BLOCK_DEFAULT;
    bool fixed = writer_subformat_is(w, "fixed", false);

    if (!fixed && !writer_subformat_is(w, "dynamic", true)) {
        return writer_bad_subformat(w, "dynamic or fixed", err);
    }
    if (!is_power_of_2(bs) || bs < 4096 || bs > (256u << 20)) {
        return vmc_error_set(err, -EINVAL, "VHD block size %" PRIu32 " is "
                             "not a power of two from 4 KiB to 256 MiB", bs);
    }
    if (w->size > VPC_WRITE_MAX) {
        return vmc_error_set(err, -EFBIG, "'%s': %" PRIu64 " bytes is more "
                             "than a VHD holds (2040 GiB)", w->path, w->size);
    }
    if (w->size == 0 && fixed) {
        return vmc_error_set(err, -EINVAL, "'%s': an empty fixed VHD (a "
                             "bare footer) is not read back by other tools: "
                             "refused", w->path);
    }
    v = calloc(1, sizeof(*v));
    if (!v) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    w->priv = v;
    size_geometry(w, v);
    v->fixed = fixed;
    w->block = bs;
    v->bitmap_size = (uint32_t)align_up(bs / 4096, 512);
    v->nbat = (uint32_t)DIV_ROUND_UP(w->size, bs);
    v->bat = malloc((size_t)MAX(v->nbat, 1) * 4);
    if (!v->bat) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    memset(v->bat, 0xff, (size_t)v->nbat * 4);
    v->next = align_up(VPC_BAT_OFF + (uint64_t)v->nbat * 4 + v->bitmap_size,
                       4096) - v->bitmap_size;
    return 0;
}

static int
vpc_w_alloc(struct vmc_writer *w, uint64_t b, uint64_t *host)
{
    struct vpc_writer *v = w->priv;
    uint8_t *bitmap;
    int r;

    if (v->fixed) {
        *host = b * w->block;
        return 0;
    }
    bitmap = malloc(v->bitmap_size);
    if (!bitmap) {
        return -ENOMEM;
    }
    memset(bitmap, 0xff, v->bitmap_size);
    r = hio_pwrite(w->file, bitmap, v->bitmap_size, v->next);
    free(bitmap);
    if (r < 0) {
        return r;
    }
    v->bat[b] = (uint32_t)(v->next / 512);
    *host = v->next + v->bitmap_size;
    v->next = *host + w->block;
    return 0;
}

static void
fill_footer(const struct vmc_writer *w, const struct vpc_writer *v,
            uint8_t *f)
{
    time_t now = time(NULL);

    memset(f, 0, VPC_FOOTER_SIZE);
    memcpy(f, "conectix", 8);
    be32_store(f + VPC_F_FEATURES, 2);
    be32_store(f + VPC_F_VERSION, 0x00010000);
    be64_store(f + VPC_F_DATA_OFF, v->fixed ? UINT64_MAX : VPC_FOOTER_SIZE);
    be32_store(f + VPC_F_TIMESTAMP, (uint32_t)(now > VPC_EPOCH ?
                                               now - VPC_EPOCH : 0));
    memcpy(f + VPC_F_CREATOR, w->o.force_size ? "qem2" : "vmcl", 4);
    be32_store(f + VPC_F_CREATOR_VER, 0x00010000);
    memcpy(f + VPC_F_CREATOR_OS, "Wi2k", 4);
    be64_store(f + VPC_F_ORIG_SIZE, w->size);
    be64_store(f + VPC_F_CUR_SIZE, w->size);
    be16_store(f + VPC_F_CYLINDERS, v->cyls);
    f[VPC_F_CYLINDERS + 2] = v->heads;
    f[VPC_F_CYLINDERS + 3] = v->secs;
    be32_store(f + VPC_F_TYPE, v->fixed ? VPC_FIXED : VPC_DYNAMIC);
    writer_random_id(f + VPC_F_UUID);
    be32_store(f + VPC_F_CHECKSUM, vpc_checksum(f, VPC_FOOTER_SIZE,
                                                VPC_F_CHECKSUM));
}

/* The dynamic header and the BAT, big-endian, after the footer copy. */
static int
write_dynamic(struct vmc_writer *w, const struct vpc_writer *v,
              struct vmc_error *err)
{
    size_t len = VPC_DYN_SIZE + (size_t)v->nbat * 4;
    uint8_t *d = calloc(1, len);
    uint32_t i;
    int r;

    if (!d) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    memcpy(d, "cxsparse", 8);
    be64_store(d + VPC_D_DATA_OFF, UINT64_MAX);
    be64_store(d + VPC_D_TABLE_OFF, VPC_BAT_OFF);
    be32_store(d + VPC_D_VERSION, 0x00010000);
    be32_store(d + VPC_D_ENTRIES, v->nbat);
    be32_store(d + VPC_D_BLOCK_SIZE, (uint32_t)w->block);
    be32_store(d + VPC_D_CHECKSUM, vpc_checksum(d, VPC_DYN_SIZE,
                                                VPC_D_CHECKSUM));
    for (i = 0; i < v->nbat; i++) {
        be32_store(d + VPC_DYN_SIZE + 4 * (size_t)i, v->bat[i]);
    }
    r = writer_pwrite(w, d, len, VPC_FOOTER_SIZE, err);
    free(d);
    return r;
}

static int
vpc_w_finish(struct vmc_writer *w, struct vmc_error *err)
{
    struct vpc_writer *v = w->priv;
    uint8_t f[VPC_FOOTER_SIZE];
    uint64_t end = v->fixed ? w->size : v->next;
    int r;

    fill_footer(w, v, f);
    r = hio_truncate(w->file, end);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot extend '%s': %s", w->path,
                             strerror(-r));
    }
    if (!v->fixed) {
        r = writer_pwrite(w, f, sizeof(f), 0, err);
        if (r == 0) {
            r = write_dynamic(w, v, err);
        }
    }
    return r < 0 ? r : writer_pwrite(w, f, sizeof(f), end, err);
}

static void
vpc_w_release(struct vmc_writer *w)
{
    struct vpc_writer *v = w->priv;

    free(v->bat);
    free(v);
}

const struct writer_ops vpc_writer_ops = {
    .format = VMC_FMT_VPC,
    .begin = vpc_w_begin,
    .alloc = vpc_w_alloc,
    .finish = vpc_w_finish,
    .release = vpc_w_release,
};
