/* qcow2.c - placeholder while the driver is written */
#include <errno.h>
#include "format/qcow2/qcow2.h"

static int
stub_open(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    return vmc_error_set(err, -ENOTSUP, "qcow2 driver not built yet");
}

const struct format_ops qcow2_ops = {
    .name = "qcow2",
    .format = VMC_FMT_QCOW2,
    .open = stub_open,
};

int
vmc_image_create(const char *path, const struct vmc_create_opts *o,
                 struct vmc_error *err)
{
    return vmc_error_set(err, -ENOTSUP, "not yet");
}

void
vmc_create_opts_init(struct vmc_create_opts *o)
{
    *o = (struct vmc_create_opts){ .format = VMC_FMT_QCOW2 };
}
