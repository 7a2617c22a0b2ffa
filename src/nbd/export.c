/*
 * export.c - exports: image chains opened once when the server starts.
 *
 * Exports are opened by vmc_nbd_server_add_export(), before any client
 * connects, so a connection (handshaking or not) never opens an image:
 * it can only pick one of these by name. Each file is opened once per
 * process (same st_dev/st_ino is refused a second time) and shared by
 * every connection to it; across processes the engine's OFD locks refuse
 * a second read-write open, and they also refuse exporting writable a
 * file that another export uses as a backing file.
 * An rbd image (a spec "rbd:...", include/vmclone-rbd.h) is opened through
 * librbd instead (vmc_rbd_image_open()): once per process by its spec;
 * across clients, RBD's watchers and exclusive lock play the locks' part.
 * A throwaway overlay over an rbd image (serve --snapshot) is a file whose
 * backing layer is that image, opened read-only through librbd
 * (vmc_scratch_open_rbd()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nbd-internal.h"
#include "vmclone-ops.h"
#include "vmclone-rbd.h"

struct nbd_export *
nbd_export_find(struct vmc_nbd_server *srv, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < srv->nexports; i++) {
        struct nbd_export *e = srv->exports[i];

        if (e->name_len == len && !memcmp(e->name, name, len)) {
            return e;
        }
    }
    if (len == 0) {
        for (i = 0; i < srv->nexports; i++) {
            if (srv->exports[i]->is_default) {
                return srv->exports[i];
            }
        }
    }
    return NULL;
}

uint16_t
nbd_export_flags(const struct nbd_export *exp, bool sr)
{
    /*
     * One vmc_image per export, shared by all its connections: a FLUSH
     * on any connection makes every completed write durable, and all
     * connections see the same data, so multi-conn holds.
     */
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
                 NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;

    if (sr) {
        f |= NBD_FLAG_SEND_DF;
    }
    if (exp->readonly) {
        f |= NBD_FLAG_READ_ONLY;
    } else {
        f |= NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
             NBD_FLAG_SEND_WRITE_ZEROES;
        if (exp->fast_zero) {
            f |= NBD_FLAG_SEND_FAST_ZERO;
        }
    }
    return f;
}

/* Export names: UTF-8 without NUL, at most NBD_MAX_STRING bytes. */
static bool
valid_name(const char *name)
{
    return strlen(name) <= NBD_MAX_STRING;
}

int
nbd_export_close(struct nbd_export *exp)
{
    int r = 0;

    if (exp && exp->img) {
        r = vmc_image_flush(exp->img);
        int r2 = vmc_image_close(exp->img);
        if (!r) {
            r = r2;
        }
        exp->img = NULL;
    }
    return r;
}

void
nbd_export_free(struct nbd_export *exp)
{
    if (!exp) {
        return;
    }
    nbd_export_close(exp);
    free(exp->name);
    free(exp->path);
    free(exp->description);
    free(exp);
}

/* -EBUSY if @path (a file: same device and inode; an rbd image: same
 * spec) is exported already; a file's stat in *@st. */
static int
already_exported(struct vmc_nbd_server *srv, const char *path,
                 struct stat *st, struct vmc_error *err)
{
    bool rbd = vmc_rbd_is_spec(path);
    size_t i;
    int r;

    if (!rbd && stat(path, st) < 0) {
        r = -errno;
        return vmc_error_set(err, r, "could not open '%s': %s", path,
                             strerror(-r));
    }
    for (i = 0; i < srv->nexports; i++) {
        const struct nbd_export *e = srv->exports[i];

        if (rbd ? e->rbd && !strcmp(e->path, path)
                : !e->rbd && e->dev == st->st_dev && e->ino == st->st_ino) {
            return vmc_error_set(err, -EBUSY, "'%s' is already exported as "
                                 "'%s'", path, e->name);
        }
    }
    return 0;
}

int
vmc_nbd_server_add_export(struct vmc_nbd_server *srv,
                          const struct vmc_nbd_export_opts *o,
                          struct vmc_error *err)
{
    struct vmc_open_opts oo = o->open;
    struct vmc_image_info info;
    struct nbd_export *exp = NULL, **grown;
    struct stat st = { 0 };
    size_t i;
    int r;

    if (!o->name || !valid_name(o->name)) {
        return vmc_error_set(err, -EINVAL, "export name is longer than %d "
                             "bytes", NBD_MAX_STRING);
    }
    if (nbd_export_find(srv, o->name, strlen(o->name)) &&
        (o->name[0] || !o->is_default)) {
        return vmc_error_set(err, -EEXIST, "export name '%s' is already "
                             "used", o->name);
    }
    for (i = 0; o->is_default && i < srv->nexports; i++) {
        if (srv->exports[i]->is_default) {
            return vmc_error_set(err, -EEXIST, "there is already a "
                                 "default export ('%s')",
                                 srv->exports[i]->name);
        }
    }
    r = already_exported(srv, o->path, &st, err);
    if (r < 0) {
        return r;
    }

    exp = calloc(1, sizeof(*exp));
    if (!exp) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    exp->name = strdup(o->name);
    exp->path = strdup(o->path);
    exp->description = o->description ? strdup(o->description) : NULL;
    if (!exp->name || !exp->path || (o->description && !exp->description)) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    exp->name_len = strlen(exp->name);
    exp->readonly = o->readonly;
    exp->is_default = o->is_default;
    exp->rbd = vmc_rbd_is_spec(o->path);
    exp->dev = exp->rbd ? 0 : st.st_dev;
    exp->ino = exp->rbd ? 0 : st.st_ino;

    oo.flags &= ~(unsigned)VMC_OPEN_RDWR;
    if (!o->readonly) {
        oo.flags |= VMC_OPEN_RDWR;
    }
    if (exp->rbd && oo.format != VMC_FMT_AUTO && oo.format != VMC_FMT_RAW) {
        /* RBD does the layering: its images hold raw data */
        r = vmc_error_set(err, -ENOTSUP, "'%s': an rbd image is served as "
                          "raw, not as %s", o->path,
                          vmc_format_name(oo.format));
    } else if (exp->rbd) {
        r = vmc_rbd_image_open(&exp->img, o->path, oo.flags, err);
    } else if (o->rbd_backing) {
        r = vmc_scratch_open_rbd(&exp->img, o->path, o->rbd_backing,
                                 oo.flags, err);
    } else {
        r = vmc_image_open(&exp->img, o->path, &oo, err);
    }
    if (r < 0) {
        goto fail;
    }
    exp->size = vmc_image_size(exp->img);
    exp->sealed = nbd_export_chain_sealed(exp->img);
    exp->cluster = vmc_image_cluster_size(exp->img);
    if (!exp->cluster || (exp->cluster & (exp->cluster - 1)) ||
        exp->cluster > NBD_MAX_PAYLOAD) {
        exp->cluster = 4096;
    }
    if (exp->cluster < 512) {
        exp->cluster = 512;
    }
    vmc_image_get_info(exp->img, &info);
    /* qcow2 v3 zeroes whole clusters by setting a flag: fast. A raw file
     * may fall back to writing zeros, so it does not claim FAST_ZERO. */
    exp->fast_zero = info.format == VMC_FMT_QCOW2 && info.qcow2_version >= 3;

    grown = realloc(srv->exports, (srv->nexports + 1) * sizeof(*grown));
    if (!grown) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    srv->exports = grown;
    srv->exports[srv->nexports++] = exp;
    return 0;

fail:
    nbd_export_free(exp);
    return r;
}
