/*
 * vdi-write.c - the VDI writer (writer.h): dynamic and static images
 * (layout in vdi.h).
 *
 * The header is followed, as VirtualBox lays it out, by the block map at
 * 1 MiB and the data area at the next MiB boundary after it. A dynamic
 * image gets its blocks in the order they are first written (blocks
 * never written stay unallocated); a static one maps every block to its
 * own place, the unwritten ones left as holes of the file. Odd sizes are
 * rounded up to a sector, as VirtualBox and QEMU read them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/vdi/vdi.h"
#include "format/writer.h"
#include "util/util.h"

#define VDI_BLOCK_DEFAULT  (1u << 20)
#define VDI_ALIGN          (1u << 20)
/* The block map and data offsets are 32-bit: at most this many blocks,
 * so that the data area still starts below 4 GiB. */
#define VDI_MAX_BLOCKS     ((0xffffffffu - 2 * VDI_ALIGN) / 4)

struct vdi_writer {
    bool fixed;
    uint32_t nblocks;
    uint32_t allocated;
    uint32_t *map;
    uint64_t bmap_off, data_off;
};

static int
vdi_w_begin(struct vmc_writer *w, struct vmc_error *err)
{
    struct vdi_writer *v;
    uint32_t bs = w->o.block_size ? w->o.block_size : VDI_BLOCK_DEFAULT;
    bool fixed = writer_subformat_is(w, "static", false);
    uint64_t n;

    if (!fixed && !writer_subformat_is(w, "dynamic", true)) {
        return writer_bad_subformat(w, "dynamic or static", err);
    }
    if (!is_power_of_2(bs) || bs < 4096 || bs > VDI_MAX_BLOCK) {
        return vmc_error_set(err, -EINVAL, "VDI block size %" PRIu32 " is "
                             "not a power of two from 4 KiB to 256 MiB", bs);
    }
    n = DIV_ROUND_UP(w->size, bs);
    if (n > VDI_MAX_BLOCKS) {
        return vmc_error_set(err, -EFBIG, "'%s': %" PRIu64 " bytes is more "
                             "than a VDI of %" PRIu32 "-byte blocks holds (%u "
                             "blocks)", w->path, w->size, bs, VDI_MAX_BLOCKS);
    }
    v = calloc(1, sizeof(*v));
    if (!v || !(v->map = malloc((size_t)MAX(n, 1) * 4))) {
        free(v);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    w->priv = v;
    w->block = bs;
    v->fixed = fixed;
    v->nblocks = (uint32_t)n;
    memset(v->map, 0xff, (size_t)n * 4);
    v->bmap_off = VDI_ALIGN;
    v->data_off = align_up(v->bmap_off + n * 4, VDI_ALIGN);
    return 0;
}

static int
vdi_w_alloc(struct vmc_writer *w, uint64_t b, uint64_t *host)
{
    struct vdi_writer *v = w->priv;
    uint32_t idx = v->fixed ? (uint32_t)b : v->allocated;

    v->map[b] = idx;
    v->allocated++;
    *host = v->data_off + (uint64_t)idx * w->block;
    return 0;
}

static void
fill_header(const struct vmc_writer *w, const struct vdi_writer *v,
            uint8_t *h)
{
    static const char text[] = "<<< vmclone VM Virtual Disk Image >>>\n";

    memset(h, 0, VDI_HEADER_SIZE);
    memcpy(h, text, sizeof(text) - 1);
    le32_store(h + VDI_H_SIGNATURE, VDI_SIGNATURE);
    le32_store(h + VDI_H_VERSION, VDI_VERSION_1_1);
    le32_store(h + VDI_H_HDR_SIZE, VDI_H_END - VDI_H_HDR_SIZE);
    le32_store(h + VDI_H_TYPE, v->fixed ? VDI_STATIC : VDI_DYNAMIC);
    le32_store(h + VDI_H_BMAP_OFF, (uint32_t)v->bmap_off);
    le32_store(h + VDI_H_DATA_OFF, (uint32_t)v->data_off);
    le32_store(h + VDI_H_SECTOR, 512);
    le64_store(h + VDI_H_DISK_SIZE, w->size);
    le32_store(h + VDI_H_BLOCK_SIZE, (uint32_t)w->block);
    le32_store(h + VDI_H_BLOCKS, v->nblocks);
    le32_store(h + VDI_H_ALLOCATED, v->fixed ? v->nblocks : v->allocated);
    writer_random_id(h + VDI_H_UUID);
    writer_random_id(h + VDI_H_UUID_SNAP);
}

static int
vdi_w_finish(struct vmc_writer *w, struct vmc_error *err)
{
    struct vdi_writer *v = w->priv;
    uint8_t h[VDI_HEADER_SIZE];
    uint32_t used = v->fixed ? v->nblocks : v->allocated, i;
    int r;

    for (i = 0; i < v->nblocks; i++) {
        if (v->fixed) {
            v->map[i] = i;
        }
        le32_store(&v->map[i], v->map[i]);
    }
    r = hio_truncate(w->file, v->data_off + (uint64_t)used * w->block);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot extend '%s': %s", w->path,
                             strerror(-r));
    }
    fill_header(w, v, h);
    r = writer_pwrite(w, h, sizeof(h), 0, err);
    return r < 0 ? r : writer_pwrite(w, v->map, (size_t)v->nblocks * 4,
                                     v->bmap_off, err);
}

static void
vdi_w_release(struct vmc_writer *w)
{
    struct vdi_writer *v = w->priv;

    free(v->map);
    free(v);
}

const struct writer_ops vdi_writer_ops = {
    .format = VMC_FMT_VDI,
    .begin = vdi_w_begin,
    .alloc = vdi_w_alloc,
    .finish = vdi_w_finish,
    .release = vdi_w_release,
};
