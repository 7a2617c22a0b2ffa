/*
 * ops-util.c - helpers of the operations layer: backing path resolution,
 * finding a layer of an open chain by name, sector runs and progress
 * accounting (zero detection is buffer_is_zero() of util/util.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops-internal.h"

size_t
ops_sector_run(const uint8_t *buf, size_t len, bool *zero)
{
    size_t n = len < OPS_SECTOR ? len : OPS_SECTOR;
    size_t pos;

    *zero = buffer_is_zero(buf, n);
    for (pos = n; pos < len; pos += n) {
        n = len - pos < OPS_SECTOR ? len - pos : OPS_SECTOR;
        if (buffer_is_zero(buf + pos, n) != *zero) {
            break;
        }
    }
    return pos < len ? pos : len;
}

void
ops_progress_init(struct ops_progress *p, vmc_progress_fn fn, void *opaque,
                  uint64_t total)
{
    p->fn = fn;
    p->opaque = opaque;
    p->total = total;
    p->done = 0;
    if (p->fn) {
        p->fn(0, total, opaque);
    }
}

void
ops_progress_add(struct ops_progress *p, uint64_t n)
{
    p->done = ops_min(p->total, p->done + n);
    if (p->fn) {
        p->fn(p->done, p->total, p->opaque);
    }
}

void
ops_progress_finish(struct ops_progress *p)
{
    p->done = p->total;
    if (p->fn) {
        p->fn(p->done, p->total, p->opaque);
    }
}

int
vmc_backing_path_resolve(const char *image_path, const char *name,
                         char **out)
{
    const char *slash = strrchr(image_path, '/');
    size_t dirlen, namelen;
    char *s;

    if (name[0] == '/' || !slash) {
        s = strdup(name);
        if (!s) {
            return -ENOMEM;
        }
        *out = s;
        return 0;
    }
    dirlen = (size_t)(slash - image_path) + 1;
    namelen = strlen(name);
    s = malloc(dirlen + namelen + 1);
    if (!s) {
        return -ENOMEM;
    }
    memcpy(s, image_path, dirlen);
    memcpy(s + dirlen, name, namelen + 1);
    *out = s;
    return 0;
}

unsigned
vmc_chain_length(const struct vmc_image *img)
{
    unsigned n = 0;

    for (; img; img = vmc_image_backing(img)) {
        n++;
    }
    return n;
}

/* Is @path the same file as @layer? */
static bool
same_file(const char *path, const struct vmc_image *layer)
{
    struct stat a, b;

    if (stat(path, &a) < 0 || stat(vmc_image_filename(layer), &b) < 0) {
        return false;
    }
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Does @name designate @layer, the backing file of @above? */
static bool
layer_matches(const struct vmc_image *above, const struct vmc_image *layer,
              const char *name)
{
    struct vmc_image_info info;
    char *rel = NULL;
    bool match;

    vmc_image_get_info(above, &info);
    if (info.backing_file && !strcmp(info.backing_file, name)) {
        return true;
    }
    if (!strcmp(vmc_image_filename(layer), name) || same_file(name, layer)) {
        return true;
    }
    if (name[0] == '/' ||
        vmc_backing_path_resolve(vmc_image_filename(above), name, &rel) < 0) {
        return false;
    }
    match = same_file(rel, layer);
    free(rel);
    return match;
}

int
vmc_chain_find(struct vmc_image *top, const char *name,
               struct vmc_image **out, unsigned *depth,
               struct vmc_error *err)
{
    struct vmc_image *above = top;
    struct vmc_image *layer;
    unsigned d = 1;

    for (layer = vmc_image_backing(top); layer;
         above = layer, layer = vmc_image_backing(layer), d++) {
        if (layer_matches(above, layer, name)) {
            *out = layer;
            if (depth) {
                *depth = d;
            }
            return 0;
        }
    }
    return vmc_error_set(err, -ENOENT, "did not find '%s' in the backing "
                         "chain of '%s'", name, vmc_image_filename(top));
}

int
vmc_backing_size(const char *image_path, const char *name, const char *fmt,
                 uint64_t *size, struct vmc_error *err)
{
    struct vmc_open_opts opts = {
        .flags = VMC_OPEN_NO_BACKING | VMC_OPEN_FORCE_SHARE,
    };
    struct vmc_image *img = NULL;
    char *path = NULL;
    int r;

    opts.format = vmc_format_from_name(fmt);
    if (opts.format == VMC_FMT_AUTO) {
        return vmc_error_set(err, -EINVAL, "unknown backing format '%s'",
                             fmt ? fmt : "");
    }
    r = vmc_backing_path_resolve(image_path, name, &path);
    if (r < 0) {
        return vmc_error_set(err, r, "out of memory");
    }
    r = vmc_image_open(&img, path, &opts, err);
    if (r < 0) {
        vmc_error_prepend(err, "could not open backing image '%s'", name);
        goto out;
    }
    *size = vmc_image_size(img);
    vmc_image_close(img);
out:
    free(path);
    return r;
}
