/*
 * map.c - the allocation map of an image through its backing chain, with
 * the fields and merge rules of `qemu-img map`.
 *
 * The chain is walked one layer at a time (not with a whole-chain block
 * status) because the depth reported for ranges that no layer defines
 * depends on where the walk stopped: at the bottom layer, or at the
 * layer whose backing file ends before the offset.
 */
#include <errno.h>
#include <string.h>

#include "ops-internal.h"

int
vmc_map_status(struct vmc_image *img, uint64_t offset, uint64_t len,
               struct vmc_map_extent *e)
{
    struct vmc_image *layer = img;
    struct vmc_block_status bs;
    unsigned depth = 0;
    int r;

    if (offset >= vmc_image_size(img) || len == 0) {
        return -EINVAL;
    }
    len = ops_min(len, vmc_image_size(img) - offset);
    memset(e, 0, sizeof(*e));
    for (;;) {
        struct vmc_image *below;

        r = vmc_image_block_status(layer, offset, len, false, &bs);
        if (r < 0) {
            return r;
        }
        if (bs.length == 0 || bs.length > len) {
            return -EIO;
        }
        len = bs.length;
        below = vmc_image_backing(layer);
        if ((bs.flags & VMC_BS_ALLOCATED) || !below ||
            offset >= vmc_image_size(below)) {
            break;
        }
        len = ops_min(len, vmc_image_size(below) - offset);
        layer = below;
        depth++;
    }
    e->start = offset;
    e->length = len;
    e->depth = depth;
    e->present = (bs.flags & VMC_BS_ALLOCATED) != 0;
    /* Undefined everywhere below this point: reads as zeros. */
    e->zero = !e->present || (bs.flags & VMC_BS_ZERO);
    e->data = e->present && (bs.flags & VMC_BS_DATA);
    /* Like qemu-img, no host offset for compressed data; an offset is
     * shown even for a range the layer leaves to its (absent) backing
     * file when the layer has preallocated space for it. */
    if ((bs.flags & VMC_BS_OFFSET) && !(bs.flags & VMC_BS_COMPRESSED)) {
        e->has_offset = true;
        e->offset = bs.host_offset;
        e->filename = vmc_image_filename(bs.layer ? bs.layer : layer);
    }
    return 0;
}

/* Can @next be appended to @cur (qemu-img map's merge rule)? */
static bool
mergeable(const struct vmc_map_extent *cur, const struct vmc_map_extent *next)
{
    if (cur->length == 0 || cur->zero != next->zero ||
        cur->data != next->data || cur->depth != next->depth ||
        cur->present != next->present ||
        cur->has_offset != next->has_offset) {
        return false;
    }
    if (!cur->has_offset) {
        return true;
    }
    return cur->filename == next->filename &&
           cur->offset + cur->length == next->offset;
}

/* The human table does not distinguish unallocated, zero and
 * zero-with-data: fold them together so that they merge. */
static void
normalise_human(struct vmc_map_extent *e)
{
    if (!e->data || e->zero) {
        e->data = false;
        e->zero = true;
    }
}

int
vmc_map(struct vmc_image *img, uint64_t start, uint64_t len, unsigned flags,
        vmc_map_fn fn, void *opaque, struct vmc_error *err)
{
    struct vmc_map_extent cur, next;
    uint64_t size = vmc_image_size(img);
    uint64_t end;
    int r;

    end = size;
    if (len <= size && start <= size - len) {
        end = start + len;
    }
    memset(&cur, 0, sizeof(cur));
    cur.start = start;
    while (start < end && cur.start + cur.length < end) {
        uint64_t off = cur.start + cur.length;

        r = vmc_map_status(img, off, end - off, &next);
        if (r < 0) {
            return vmc_error_set(err, r, "could not read the metadata of "
                                 "'%s' at offset %llu: %s",
                                 vmc_image_filename(img),
                                 (unsigned long long)off, strerror(-r));
        }
        if (flags & VMC_MAP_HUMAN) {
            normalise_human(&next);
        }
        if (mergeable(&cur, &next)) {
            cur.length += next.length;
            continue;
        }
        if (cur.length > 0) {
            r = fn(&cur, opaque);
            if (r < 0) {
                return r;
            }
        }
        cur = next;
    }
    return fn(&cur, opaque);
}
