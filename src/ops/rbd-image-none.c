/*
 * rbd-image-none.c - vmc_rbd_image_open() in a build without librbd
 * (rbd-image.c is the real one): says so (-ENOTSUP).
 */
#include <errno.h>
#include <stddef.h>

#include "vmclone-rbd.h"

int
vmc_rbd_image_open(struct vmc_image **out, const char *spec, unsigned flags,
                   struct vmc_error *err)
{
    (void)spec;
    (void)flags;
    *out = NULL;
    return vmc_error_set(err, -ENOTSUP, "rbd images are not available: "
                         "vm-clone was built without librbd (install "
                         "librbd-dev and librados-dev, then rebuild)");
}
