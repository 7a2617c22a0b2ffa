/*
 * du.c - space accounting of an image and its chain, from block status:
 * what this layer holds, what it reads from below, and what flattening
 * it would add (the shared bytes rounded up to its cluster size, since
 * a copy allocates whole clusters).
 */
#include <errno.h>
#include <string.h>

#include "ops-file.h"
#include "ops-internal.h"

int
vmc_du(struct vmc_image *img, struct vmc_du *out, struct vmc_error *err)
{
    uint64_t size = vmc_image_size(img), off = 0;
    uint64_t cs = vmc_image_cluster_size(img);
    uint64_t next_cluster = 0;     /* first cluster not yet counted */
    struct vmc_block_status bs;
    int r;

    memset(out, 0, sizeof(*out));
    out->virtual_size = size;
    out->depth = vmc_chain_length(img);
    if (!ops_is_power_of_2(cs)) {
        cs = 4096;
    }
    r = ops_file_allocated(vmc_image_filename(img), &out->disk_size);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot stat '%s': %s",
                             vmc_image_filename(img), strerror(-r));
    }
    while (off < size) {
        r = vmc_image_block_status(img, off, size - off, true, &bs);
        if (r == 0 && (bs.length == 0 || bs.length > size - off)) {
            r = -EIO;
        }
        if (r < 0) {
            return vmc_error_set(err, r, "could not read the metadata of "
                                 "'%s' at offset %llu: %s",
                                 vmc_image_filename(img),
                                 (unsigned long long)off, strerror(-r));
        }
        if (bs.depth == 0 && (bs.flags & VMC_BS_ALLOCATED)) {
            if (bs.flags & VMC_BS_ZERO) {
                out->zero += bs.length;
            } else {
                out->unique += bs.length;
            }
        } else if (bs.depth > 0 && (bs.flags & VMC_BS_ALLOCATED) &&
                   !(bs.flags & VMC_BS_ZERO)) {
            uint64_t first = ops_max(off / cs, next_cluster);
            uint64_t last = (off + bs.length - 1) / cs;

            out->shared += bs.length;
            if (last >= first) {
                out->flatten += (last - first + 1) * cs;
                next_cluster = last + 1;
            }
        }
        off += bs.length;
    }
    return 0;
}
