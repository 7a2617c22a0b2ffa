/*
 * rbd-none.c - include/vmclone-rbd.h in a build without librbd: every
 * call that would need the cluster says so (-ENOTSUP).
 */
#include <errno.h>
#include <stddef.h>

#include "vmclone-rbd.h"

static int
no_librbd(struct vmc_error *err)
{
    return vmc_error_set(err, -ENOTSUP, "rbd pools are not available: "
                         "vm-clone was built without librbd (install "
                         "librbd-dev and librados-dev, then rebuild)");
}

bool
vmc_rbd_available(void)
{
    return false;
}

int
vmc_rbd_pool_check(const char *spec, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_import(const char *src, const char *dst, const char *seal,
               uint64_t *bytes, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_clone(const char *parent, const char *child, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_copy(const char *src, const char *dst, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_export(const char *src, const char *dst, uint64_t *bytes,
               struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_flatten(const char *spec, struct vmc_error *err)
{
    return no_librbd(err);
}

void
vmc_rbd_shutdown(void)
{
}

void
vmc_rbd_prefetch(const char *spec, bool read_only)
{
}

int
vmc_rbd_rollback(const char *spec, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_watchers(const char *spec, unsigned *count, struct vmc_error *err)
{
    *count = 0;
    return no_librbd(err);
}

int
vmc_rbd_parent(const char *spec, char **out, struct vmc_error *err)
{
    *out = NULL;
    return no_librbd(err);
}

int
vmc_rbd_freeze(const char *spec, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_remove(const char *spec, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_seal_get(const char *spec, char **out, struct vmc_error *err)
{
    *out = NULL;
    return no_librbd(err);
}

int
vmc_rbd_verify(const char *spec, const char *want, struct vmc_error *err)
{
    return no_librbd(err);
}

int
vmc_rbd_children(const char *spec, char ***names, size_t *count,
                 struct vmc_error *err)
{
    *names = NULL;
    *count = 0;
    return no_librbd(err);
}
