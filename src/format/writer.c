/*
 * writer.c - the core of the sequential image writers (writer.h): options,
 * the walk of the guest in allocation blocks, and the finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "format/writer.h"
#include "util/util.h"

static const struct writer_ops *
writer_ops_for(enum vmc_format fmt)
{
    static const struct writer_ops *const all[] = {
        &vpc_writer_ops, &vdi_writer_ops, &vhdx_writer_ops, &vmdk_writer_ops,
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(all); i++) {
        if (all[i]->format == fmt) {
            return all[i];
        }
    }
    return NULL;
}

void
vmc_writer_opts_init(struct vmc_writer_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->zlib_level = -1;
}

bool
vmc_format_has_writer(enum vmc_format fmt)
{
    return writer_ops_for(fmt) != NULL;
}

static int
parse_bool(const char *k, const char *v, bool *out, struct vmc_error *err)
{
    if (!v || !strcmp(v, "on") || !strcmp(v, "true")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "false")) {
        *out = false;
    } else {
        return vmc_error_set(err, -EINVAL, "invalid value '%s' for %s (on "
                             "or off)", v, k);
    }
    return 0;
}

/* One "key=value" (@v NULL for a bare key). */
static int
apply_option(struct vmc_writer_opts *o, const char *k, const char *v,
             struct vmc_error *err)
{
    uint64_t n;
    char *end;
    long level;
    bool on;

    if (!strcmp(k, "force_size")) {
        return parse_bool(k, v, &o->force_size, err);
    }
    if (!strcmp(k, "static") && o->format == VMC_FMT_VDI) {
        /* qemu-img's spelling of subformat=static */
        if (parse_bool(k, v, &on, err) < 0) {
            return -EINVAL;
        }
        strcpy(o->subformat, on ? "static" : "dynamic");
        return 0;
    }
    if (!v) {
        return vmc_error_set(err, -EINVAL, "invalid option '%s': expected "
                             "key=value", k);
    }
    if (!strcmp(k, "subformat")) {
        if (strlen(v) >= sizeof(o->subformat)) {
            return vmc_error_set(err, -EINVAL, "invalid subformat '%s'", v);
        }
        strcpy(o->subformat, v);
        return 0;
    }
    if (!strcmp(k, "block_size")) {
        if (vmc_parse_size(v, &n) < 0 || n > UINT32_MAX) {
            return vmc_error_set(err, -EINVAL, "invalid block_size '%s'", v);
        }
        o->block_size = (uint32_t)n;
        return 0;
    }
    if (!strcmp(k, "zlib_level")) {
        level = strtol(v, &end, 10);
        if (end == v || *end || level < 0 || level > 9) {
            return vmc_error_set(err, -EINVAL, "invalid zlib_level '%s' (0 "
                                 "to 9)", v);
        }
        o->zlib_level = (int)level;
        return 0;
    }
    return vmc_error_set(err, -EINVAL, "invalid parameter '%s' for format "
                         "'%s'", k, vmc_format_name(o->format));
}

int
vmc_writer_opts_parse(struct vmc_writer_opts *o, const char *list,
                      struct vmc_error *err)
{
    char *copy = strdup(list ? list : ""), *save = NULL, *kv, *eq;
    int r = copy ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");

    for (kv = copy ? strtok_r(copy, ",", &save) : NULL; r == 0 && kv;
         kv = strtok_r(NULL, ",", &save)) {
        eq = strchr(kv, '=');
        if (eq) {
            *eq++ = '\0';
        }
        r = apply_option(o, kv, eq, err);
    }
    free(copy);
    return r;
}

bool
writer_subformat_is(const struct vmc_writer *w, const char *name,
                    bool is_default)
{
    return !strcmp(w->o.subformat, name) ||
           (is_default && !w->o.subformat[0]);
}

int
writer_bad_subformat(const struct vmc_writer *w, const char *names,
                     struct vmc_error *err)
{
    return vmc_error_set(err, -EINVAL, "invalid subformat '%s' for format "
                         "'%s' (%s)", w->o.subformat,
                         vmc_format_name(w->o.format), names);
}

int
writer_pwrite(struct vmc_writer *w, const void *buf, size_t len,
              uint64_t off, struct vmc_error *err)
{
    int r = hio_pwrite(w->file, buf, len, off);

    return r < 0 ? vmc_error_set(err, r, "cannot write '%s': %s", w->path,
                                 strerror(-r)) : 0;
}

void
writer_random_id(uint8_t id[16])
{
    size_t got = 0;
    ssize_t n;

    while (got < 16) {
        n = getrandom(id + got, 16 - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

void
vmc_writer_free(struct vmc_writer *w)
{
    if (!w) {
        return;
    }
    if (w->ops && w->priv) {
        w->ops->release(w);
    }
    hio_close(w->file);
    free(w->buf);
    free(w->path);
    free(w);
}

int
vmc_writer_new(struct vmc_writer **out, const char *path, uint64_t size,
               const struct vmc_writer_opts *o, struct vmc_error *err)
{
    const struct writer_ops *ops = writer_ops_for(o->format);
    struct vmc_writer *w;
    int r;

    *out = NULL;
    if (!ops) {
        return vmc_error_set(err, -ENOTSUP, "no writer for format '%s'",
                             vmc_format_name(o->format));
    }
    w = calloc(1, sizeof(*w));
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    w->ops = ops;
    w->o = *o;
    w->size = align_up(size, 512);
    r = ops->begin(w, err);
    if (r == 0 && w->buffered && !(w->buf = calloc(1, w->block))) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        r = hio_open(&w->file, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (r < 0) {
            vmc_error_set(err, r, "could not create '%s': %s", path,
                          strerror(-r));
        }
    }
    if (r < 0) {
        vmc_writer_free(w);
        return r;
    }
    *out = w;
    return 0;
}

uint64_t
vmc_writer_size(const struct vmc_writer *w)
{
    return w->size;
}

/* Leave the current block (buffered: hand it over) and enter block @b. */
static int
enter_block(struct vmc_writer *w, uint64_t b)
{
    int r = 0;

    if (w->buffered) {
        if (w->cur) {
            r = w->ops->put_block(w, w->cur - 1, w->buf);
            memset(w->buf, 0, w->block);
        }
    } else {
        r = w->ops->alloc(w, b, &w->cur_host);
    }
    w->cur = r < 0 ? 0 : b + 1;
    return r;
}

int
vmc_writer_write(struct vmc_writer *w, const void *buf, uint64_t off,
                 size_t len)
{
    const uint8_t *p = buf;
    uint64_t end;
    int r;

    if (off < w->pos || !add_ok(off, len, &end) || end > w->size) {
        return -EINVAL;
    }
    while (len) {
        uint64_t b = off / w->block, in = off % w->block;
        size_t n = (size_t)MIN(len, w->block - in);

        if (w->cur != b + 1 && (r = enter_block(w, b)) < 0) {
            return r;
        }
        if (w->buffered) {
            memcpy(w->buf + in, p, n);
        } else if ((r = hio_pwrite(w->file, p, n, w->cur_host + in)) < 0) {
            return r;
        }
        p += n;
        off += n;
        len -= n;
    }
    w->pos = end;
    return 0;
}

int
vmc_writer_finish(struct vmc_writer *w, struct vmc_error *err)
{
    int r = 0;

    if (w->buffered && w->cur) {
        r = w->ops->put_block(w, w->cur - 1, w->buf);
        if (r < 0) {
            vmc_error_set(err, r, "cannot write '%s': %s", w->path,
                          strerror(-r));
        }
    }
    if (r == 0) {
        r = w->ops->finish(w, err);
    }
    if (r == 0) {
        r = hio_sync(w->file);
        if (r < 0) {
            vmc_error_set(err, r, "cannot flush '%s': %s", w->path,
                          strerror(-r));
        }
    }
    vmc_writer_free(w);
    return r;
}
