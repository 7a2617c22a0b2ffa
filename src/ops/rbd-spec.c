/*
 * rbd-spec.c - the spec strings that name rbd pools and images
 * (include/vmclone-rbd.h), with or without librbd: build, parse, and
 * QEMU's form of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmclone-rbd.h"
#include "rbd-internal.h"

bool
vmc_rbd_is_spec(const char *path)
{
    return path && !strncmp(path, "rbd:", 4);
}

/* A name the spec syntax can carry: 1..max-1 bytes, none of @bad, no
 * control character. */
static int
check_part(const char *what, const char *v, const char *bad, size_t max,
           struct vmc_error *err)
{
    const char *p;

    if (!v[0] || strlen(v) >= max) {
        return vmc_error_set(err, -EINVAL, "rbd %s '%s': empty or too long",
                             what, v);
    }
    for (p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || strchr(bad, *p)) {
            return vmc_error_set(err, -EINVAL, "rbd %s '%s': '%c' is not "
                                 "allowed", what, v, *p < 0x20 ? '?' : *p);
        }
    }
    return 0;
}

int
vmc_rbd_pool_spec(const char *pool, const char *ns, const char *conf,
                  const char *id, char **out, struct vmc_error *err)
{
    int r = check_part("pool", pool, ":/@", 128, err);

    *out = NULL;
    if (r == 0 && ns) {
        r = check_part("namespace", ns, ":/@", 128, err);
    }
    if (r == 0 && id) {
        r = check_part("user", id, ":/@", 128, err);
    }
    if (r == 0 && conf) {
        r = check_part("configuration file", conf, ":", PATH_MAX, err);
    }
    if (r == 0 && conf && conf[0] != '/') {
        r = vmc_error_set(err, -EINVAL, "rbd configuration file '%s': "
                          "give an absolute path", conf);
    }
    if (r == 0 && asprintf(out, "rbd:%s%s%s%s%s%s%s", pool, ns ? "/" : "",
                           ns ? ns : "", id ? ":id=" : "", id ? id : "",
                           conf ? ":conf=" : "", conf ? conf : "") < 0) {
        *out = NULL;
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return r;
}

/* Copy @v (@len bytes) into @dst of @size, or -EINVAL. */
static int
take(char *dst, size_t size, const char *v, size_t len)
{
    if (len >= size) {
        return -EINVAL;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

/* The ":key=value" options after the pool part. */
static int
parse_options(const char *p, struct rbd_spec *out)
{
    int r = 0;

    while (r == 0 && *p == ':') {
        const char *end = strchr(p + 1, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (!strncmp(p, ":id=", 4)) {
            r = take(out->id, sizeof(out->id), p + 4, len - 4);
        } else if (!strncmp(p, ":conf=", 6)) {
            r = take(out->conf, sizeof(out->conf), p + 6, len - 6);
        } else {
            r = -EINVAL;
        }
        p += len;
    }
    return *p ? -EINVAL : r;
}

int
rbd_spec_parse(const char *spec, bool image, struct rbd_spec *out,
               struct vmc_error *err)
{
    const char *p = spec + 4, *slash, *colon;
    char *head = NULL, *at;
    int r = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!vmc_rbd_is_spec(spec)) {
        goto out;
    }
    if (image) {
        slash = strrchr(p, '/');
        if (!slash || !slash[1] ||
            take(out->image, sizeof(out->image), slash + 1,
                 strlen(slash + 1)) < 0 ||
            !(head = strndup(p, (size_t)(slash - p)))) {
            goto out;
        }
        p = head;
        if ((at = strchr(out->image, '@'))) {
            *at = '\0';
            if (!out->image[0] || !at[1] ||
                take(out->snap, sizeof(out->snap), at + 1,
                     strlen(at + 1)) < 0) {
                goto out;
            }
        }
    }
    colon = strchr(p, ':');
    slash = memchr(p, '/', colon ? (size_t)(colon - p) : strlen(p));
    if (slash) {
        r = take(out->pool, sizeof(out->pool), p, (size_t)(slash - p));
        if (r == 0) {
            r = take(out->ns, sizeof(out->ns), slash + 1,
                     (size_t)((colon ? colon : slash + strlen(slash)) -
                              slash - 1));
        }
    } else {
        r = take(out->pool, sizeof(out->pool), p,
                 colon ? (size_t)(colon - p) : strlen(p));
    }
    if (r == 0 && colon) {
        r = parse_options(colon, out);
    }
    if (r == 0 && !out->pool[0]) {
        r = -EINVAL;
    }
out:
    free(head);
    if (r < 0) {
        return vmc_error_set(err, -EINVAL, "'%s' is not an rbd %s spec "
                             "(rbd:POOL[/NAMESPACE][:id=USER][:conf=FILE]%s)",
                             spec, image ? "image" : "pool",
                             image ? "/IMAGE[@SNAP]" : "");
    }
    return 0;
}

int
vmc_rbd_qemu_filename(const char *spec, char **out, struct vmc_error *err)
{
    struct rbd_spec s;
    int r = rbd_spec_parse(spec, true, &s, err);

    *out = NULL;
    if (r == 0 && asprintf(out, "rbd:%s/%s%s%s%s%s%s%s%s%s", s.pool, s.ns,
                           s.ns[0] ? "/" : "", s.image,
                           s.snap[0] ? "@" : "", s.snap,
                           s.id[0] ? ":id=" : "", s.id,
                           s.conf[0] ? ":conf=" : "", s.conf) < 0) {
        *out = NULL;
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return r;
}
