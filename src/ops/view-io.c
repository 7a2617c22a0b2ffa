/*
 * view-io.c - read and write a guest view piece by piece (view-io.h).
 */
#include <string.h>

#include "ops-internal.h"
#include "view-io.h"

/* Sets the message of a failed read or write ("reading"/"writing"). */
static int
view_error(struct vmc_error *err, int r, const char *doing, const char *what,
           struct vmc_image *img, uint64_t off)
{
    return vmc_error_set(err, r, "error while %s %s'%s' at offset %llu: %s",
                         doing, what, vmc_image_filename(img),
                         (unsigned long long)off, strerror(-r));
}

int
ops_read_view(struct vmc_image *img, uint8_t *buf, uint64_t off, uint64_t n,
              const char *what, struct vmc_error *err)
{
    uint64_t have = 0;
    int r;

    if (img && off < vmc_image_size(img)) {
        have = ops_min(n, vmc_image_size(img) - off);
        r = vmc_image_read(img, buf, off, have);
        if (r < 0) {
            return view_error(err, r, "reading", what, img, off);
        }
    }
    memset(buf + have, 0, n - have);
    return 0;
}

int
ops_write_view(struct vmc_image *img, const uint8_t *buf, uint64_t off,
               uint64_t n, const char *what, struct vmc_error *err)
{
    int r;

    if (!buf || buffer_is_zero(buf, n)) {
        r = vmc_image_write_zeroes(img, off, n, 0);
    } else {
        r = vmc_image_write(img, buf, off, n, 0);
    }
    return r < 0 ? view_error(err, r, "writing", what, img, off) : 0;
}
