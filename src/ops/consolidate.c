/*
 * consolidate.c - collapse the intermediate layers of a chain into one.
 *
 * The chain of TOP is L0 = TOP, L1, ..., Lk = the kept layer (the bottom
 * unless --keep names another). The intermediate layers L1..L(k-1) are
 * merged into one so that TOP's chain becomes TOP -> M -> Lk, by one of:
 *
 *   COMMIT     copy what L1..L(k-2) define into L(k-1) (vmc_commit()), then
 *              point TOP at L(k-1). Moves the bytes of the upper layers.
 *   PULL       copy what L2..L(k-1) define (and L1 does not) into L1,
 *              which already reads exactly that data, then point L1 at Lk.
 *              Moves the bytes of the lower layers.
 *   NEW_LAYER  write a new overlay of Lk holding everything L1..L(k-1)
 *              define (temporary name, synced, renamed), then point TOP
 *              at it. Writes into no existing layer.
 *
 * The automatic choice takes the fewest bytes to move among the methods
 * that are allowed. Who else uses a layer decides what is allowed:
 *   - COMMIT changes what L(k-1) reads, and so what every image reading
 *     through L2..L(k-1) sees: none of them may have users outside the
 *     chain (images backed by L1 are not affected: L1 still hides all it
 *     defines).
 *   - PULL writes into L1, which must have no user but TOP.
 *   - A layer locked by another process cannot be reopened read-write.
 *
 * Crash safety (TOP's guest view is the same at every instant):
 *   COMMIT  while copying, L1..L(k-2) still define every range being
 *           copied; the backing link of TOP is rewritten only after the
 *           flush of L(k-1), which then reads what the chain above it did.
 *   PULL    only ranges L1 does not define are written, with the data L1
 *           reads there already; its link is rewritten after a flush.
 *   NEW     the new layer appears by an atomic rename once durable; TOP's
 *           link is rewritten last.
 * A crash before the final header write leaves the old chain, valid and
 * reading the same, with possibly extra (identical) data in one layer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops-file.h"
#include "ops-internal.h"

struct cons {
    struct vmc_image *top;
    struct vmc_image **layers;      /* layers[0] = top */
    unsigned n;                     /* chain length */
    unsigned keep;                  /* index of the kept layer */
    char **user;                    /* per layer: an outside user, or NULL */
    const struct vmc_consolidate_opts *o;
    struct vmc_consolidate_result *res;
    struct vmc_error *err;
    uint8_t *buf;
    struct vmc_image *target;       /* NEW_LAYER: the layer written */
    struct ops_progress progress;
};

const char *
vmc_consolidate_method_name(enum vmc_consolidate_method m)
{
    switch (m) {
    case VMC_CONSOLIDATE_COMMIT: return "commit";
    case VMC_CONSOLIDATE_PULL: return "pull";
    case VMC_CONSOLIDATE_NEW_LAYER: return "new-layer";
    case VMC_CONSOLIDATE_NONE: break;
    }
    return "none";
}

/* ------------------------------------------------------------- users */

/* Index (1..keep) of the chain layer @path is, or 0. */
static unsigned
layer_index_of(struct cons *c, const struct stat *st)
{
    struct stat ls;
    unsigned i;

    for (i = 0; i < c->n; i++) {
        if (stat(vmc_image_filename(c->layers[i]), &ls) == 0 &&
            ls.st_dev == st->st_dev && ls.st_ino == st->st_ino) {
            return i;
        }
    }
    return UINT32_MAX;
}

/*
 * If @path is an image outside the chain whose backing file is one of the
 * intermediate layers, record it as a user of that layer.
 * @strict: a file that cannot be opened is an error (named by the user).
 */
static int
note_user(struct cons *c, const char *path, bool strict)
{
    struct vmc_open_opts oo = {
        .flags = VMC_OPEN_NO_BACKING | VMC_OPEN_FORCE_SHARE,
    };
    struct vmc_image_info info;
    struct vmc_image *img = NULL;
    struct stat st;
    char *bpath = NULL;
    unsigned idx;
    int r;

    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        return strict ? vmc_error_set(c->err, -ENOENT, "user image '%s' "
                                      "not found", path) : 0;
    }
    if (layer_index_of(c, &st) != UINT32_MAX) {
        return 0;               /* part of the chain itself */
    }
    r = vmc_image_open(&img, path, &oo, strict ? c->err : NULL);
    if (r < 0) {
        if (strict) {
            vmc_error_prepend(c->err, "cannot inspect user image '%s'",
                              path);
        }
        return strict ? r : 0;
    }
    vmc_image_get_info(img, &info);
    if (info.backing_file &&
        vmc_backing_path_resolve(path, info.backing_file, &bpath) == 0 &&
        stat(bpath, &st) == 0) {
        idx = layer_index_of(c, &st);
        if (idx >= 1 && idx < c->n && !c->user[idx]) {
            c->user[idx] = strdup(path);
        }
    }
    free(bpath);
    vmc_image_close(img);
    return 0;
}

static int
scan_dir(struct cons *c, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *path;
    int r = 0;

    if (!d) {
        return 0;
    }
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;           /* ., .., and our temporary files */
        }
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
            r = vmc_error_set(c->err, -ENOMEM, "out of memory");
            break;
        }
        r = note_user(c, path, false);
        free(path);
    }
    closedir(d);
    return r;
}

static int
find_users(struct cons *c)
{
    char **dirs;
    unsigned i, j, nd = 0;
    size_t u;
    int r = 0;

    for (u = 0; u < c->o->nusers; u++) {
        r = note_user(c, c->o->users[u], true);
        if (r < 0) {
            return r;
        }
    }
    if (c->o->no_scan) {
        return 0;
    }
    dirs = calloc(c->n, sizeof(*dirs));
    if (!dirs) {
        return vmc_error_set(c->err, -ENOMEM, "out of memory");
    }
    for (i = 0; i <= c->keep && r == 0; i++) {
        char *d = ops_dirname(vmc_image_filename(c->layers[i]));
        bool seen = false;

        for (j = 0; d && j < nd; j++) {
            seen |= ops_same_file(d, dirs[j]);
        }
        if (!d || seen) {
            free(d);
            continue;
        }
        dirs[nd++] = d;
        r = scan_dir(c, d);
    }
    for (j = 0; j < nd; j++) {
        free(dirs[j]);
    }
    free(dirs);
    return r;
}

/* ------------------------------------------------------------ measure */

/* Walk L1's chain: call @fn for every range defined by L1..L(keep-1),
 * with the index of the defining layer. */
typedef int (*range_fn)(struct cons *c, unsigned idx, uint64_t off,
                        uint64_t n, bool zero);

static int
walk(struct cons *c, range_fn fn)
{
    struct vmc_image *l1 = c->layers[1];
    uint64_t size = vmc_image_size(l1), off = 0;
    struct vmc_block_status bs;
    int r;

    while (off < size) {
        r = vmc_image_block_status(l1, off, ops_min(size - off,
                                   OPS_BUF_SIZE), true, &bs);
        if (r == 0 && (bs.length == 0 || bs.length > size - off)) {
            r = -EIO;
        }
        if (r < 0) {
            return vmc_error_set(c->err, r, "could not read the metadata of "
                                 "'%s' at offset %llu: %s",
                                 vmc_image_filename(l1),
                                 (unsigned long long)off, strerror(-r));
        }
        if ((bs.flags & (VMC_BS_ALLOCATED | VMC_BS_ZERO)) &&
            1 + bs.depth < c->keep) {
            r = fn(c, 1 + bs.depth, off, bs.length,
                   (bs.flags & VMC_BS_ZERO) != 0);
            if (r < 0) {
                return r;
            }
        }
        off += bs.length;
        ops_progress_add(&c->progress, bs.length);
    }
    return 0;
}

static int
measure_fn(struct cons *c, unsigned idx, uint64_t off, uint64_t n, bool zero)
{
    (void)off;
    if (zero) {
        return 0;       /* zeros cost a metadata update, not a copy */
    }
    if (idx + 1 < c->keep) {
        c->res->bytes_commit += n;      /* above the lowest intermediate */
    }
    if (idx >= 2) {
        c->res->bytes_pull += n;        /* below the highest */
    }
    return 0;
}

/* ---------------------------------------------------------------- copy */

static int
copy_into(struct cons *c, struct vmc_image *dst, uint64_t off, uint64_t n,
          bool zero)
{
    struct vmc_image *l1 = c->layers[1];
    int r;

    c->res->bytes_moved += n;
    if (zero) {
        r = vmc_image_write_zeroes(dst, off, n, 0);
    } else {
        r = vmc_image_read(l1, c->buf, off, n);
        if (r < 0) {
            return vmc_error_set(c->err, r, "error while reading '%s' at "
                                 "offset %llu: %s", vmc_image_filename(l1),
                                 (unsigned long long)off, strerror(-r));
        }
        r = vmc_image_write(dst, c->buf, off, n, 0);
    }
    if (r < 0) {
        return vmc_error_set(c->err, r, "error while writing '%s' at offset "
                             "%llu: %s", vmc_image_filename(dst),
                             (unsigned long long)off, strerror(-r));
    }
    return 0;
}

static int
pull_fn(struct cons *c, unsigned idx, uint64_t off, uint64_t n, bool zero)
{
    return idx >= 2 ? copy_into(c, c->layers[1], off, n, zero) : 0;
}

static int
new_fn(struct cons *c, unsigned idx, uint64_t off, uint64_t n, bool zero)
{
    (void)idx;
    return copy_into(c, c->target, off, n, zero);
}

/* Point @img at @layer, stored relative to @img's directory. */
static int
relink_to(struct cons *c, struct vmc_image *img, const char *layer_path,
          enum vmc_format fmt)
{
    char *name = NULL;
    int r;

    r = vmc_clone_backing_name(layer_path, vmc_image_filename(img), false,
                               &name, c->err);
    if (r < 0) {
        return r;
    }
    r = vmc_image_set_backing(img, name, vmc_format_name(fmt), c->err);
    free(name);
    return r;
}

static int
flush_layer(struct cons *c, struct vmc_image *img)
{
    int r = vmc_image_flush(img);

    if (r < 0) {
        return vmc_error_set(c->err, r, "cannot flush '%s': %s",
                             vmc_image_filename(img), strerror(-r));
    }
    return 0;
}

static int
do_commit(struct cons *c)
{
    struct vmc_image *low = c->layers[c->keep - 1];
    struct vmc_commit_opts co = {
        .base = vmc_image_filename(low),
        .keep_top = true,
    };
    int r;

    c->res->bytes_moved = c->res->bytes_commit;
    r = vmc_commit(c->layers[1], &co, c->err);
    if (r < 0) {
        return r;
    }
    snprintf(c->res->merged, sizeof(c->res->merged), "%s",
             vmc_image_filename(low));
    return relink_to(c, c->top, vmc_image_filename(low),
                     vmc_image_format(low));
}

static int
do_pull(struct cons *c)
{
    struct vmc_image *l1 = c->layers[1];
    struct vmc_image *kept = c->layers[c->keep];
    int r;

    r = vmc_image_reopen_rw(l1, c->err);
    if (r < 0) {
        vmc_error_prepend(c->err, "cannot write '%s'",
                          vmc_image_filename(l1));
        return r;
    }
    ops_progress_init(&c->progress, c->o->progress, c->o->opaque,
                      vmc_image_size(l1));
    r = walk(c, pull_fn);
    if (r == 0) {
        r = flush_layer(c, l1);
    }
    if (r == 0) {
        r = relink_to(c, l1, vmc_image_filename(kept),
                      vmc_image_format(kept));
    }
    snprintf(c->res->merged, sizeof(c->res->merged), "%s",
             vmc_image_filename(l1));
    return r;
}

static int
do_new_layer(struct cons *c)
{
    struct vmc_image *l1 = c->layers[1];
    struct vmc_image *kept = c->layers[c->keep];
    struct vmc_create_opts co;
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR };
    struct vmc_image *m = NULL;
    char *path = NULL, *tmp = NULL, *bname = NULL;
    struct stat st;
    int r;

    if (c->o->new_layer) {
        path = strdup(c->o->new_layer);
    } else if (asprintf(&path, "%s.merged", vmc_image_filename(l1)) < 0) {
        path = NULL;
    }
    if (!path) {
        return vmc_error_set(c->err, -ENOMEM, "out of memory");
    }
    if (lstat(path, &st) == 0) {
        r = vmc_error_set(c->err, -EEXIST, "'%s' already exists", path);
        goto out;
    }
    r = ops_tmp_create(path, &tmp, NULL, c->err);
    if (r < 0) {
        goto out;
    }
    r = vmc_clone_backing_name(vmc_image_filename(kept), path, false,
                               &bname, c->err);
    if (r < 0) {
        goto out;
    }
    vmc_create_opts_init(&co);
    co.extended_l2 = true;
    co.cluster_size = 128 * 1024;
    co.size = ops_align_up(vmc_image_size(l1), OPS_SECTOR);
    co.backing_file = bname;
    co.backing_format = vmc_image_format(kept);
    co.backing_unsafe = true;
    r = vmc_image_create(tmp, &co, c->err);
    if (r == 0) {
        r = vmc_image_open(&m, tmp, &oo, c->err);
    }
    if (r < 0) {
        goto out;
    }
    c->target = m;
    ops_progress_init(&c->progress, c->o->progress, c->o->opaque,
                      vmc_image_size(l1));
    r = walk(c, new_fn);
    if (r == 0) {
        r = flush_layer(c, m);
    }
    if (r == 0) {
        r = vmc_image_close(m);
        m = NULL;
        if (r < 0) {
            vmc_error_set(c->err, r, "cannot close '%s': %s", tmp,
                          strerror(-r));
        }
    }
    if (r == 0) {
        r = ops_rename(tmp, path, false, c->err);
    }
    if (r < 0) {
        goto out;
    }
    free(tmp);
    tmp = NULL;
    r = ops_fsync_parent(path, c->err);
    if (r == 0) {
        snprintf(c->res->merged, sizeof(c->res->merged), "%s", path);
        r = relink_to(c, c->top, path, VMC_FMT_QCOW2);
    }
out:
    vmc_image_close(m);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(bname);
    free(path);
    return r;
}

/* ------------------------------------------------------------- choose */

/* The first intermediate layer in [from, to] with an outside user. */
static unsigned
used_layer(struct cons *c, unsigned from, unsigned to)
{
    unsigned i;

    for (i = from; i <= to && i < c->n; i++) {
        if (c->user[i]) {
            return i;
        }
    }
    return 0;
}

static int
refuse(struct cons *c, enum vmc_consolidate_method m, unsigned idx)
{
    return vmc_error_set(c->err, -EBUSY, "cannot %s: layer '%s' is also "
                         "used by '%s'",
                         m == VMC_CONSOLIDATE_COMMIT ? "commit down" :
                         "pull up", vmc_image_filename(c->layers[idx]),
                         c->user[idx]);
}

static int
choose(struct cons *c, enum vmc_consolidate_method *out)
{
    unsigned commit_user = used_layer(c, 2, c->keep - 1);
    unsigned pull_user = used_layer(c, 1, 1);
    enum vmc_consolidate_method m = c->o->method;

    if (m == VMC_CONSOLIDATE_COMMIT && commit_user) {
        return refuse(c, m, commit_user);
    }
    if (m == VMC_CONSOLIDATE_PULL && pull_user) {
        return refuse(c, m, pull_user);
    }
    if (m == VMC_CONSOLIDATE_NONE) {
        if (!commit_user && (pull_user ||
                             c->res->bytes_commit <= c->res->bytes_pull)) {
            m = VMC_CONSOLIDATE_COMMIT;
        } else if (!pull_user) {
            m = VMC_CONSOLIDATE_PULL;
        } else {
            m = VMC_CONSOLIDATE_NEW_LAYER;
        }
    }
    *out = m;
    return 0;
}

static int
collect_layers(struct cons *c)
{
    struct vmc_image *l;
    unsigned depth, i = 0;
    int r;

    c->n = vmc_chain_length(c->top);
    c->layers = calloc(c->n, sizeof(*c->layers));
    c->user = calloc(c->n, sizeof(*c->user));
    if (!c->layers || !c->user) {
        return vmc_error_set(c->err, -ENOMEM, "out of memory");
    }
    for (l = c->top; l; l = vmc_image_backing(l)) {
        c->layers[i++] = l;
    }
    c->keep = c->n - 1;
    if (c->o->keep) {
        r = vmc_chain_find(c->top, c->o->keep, &l, &depth, c->err);
        if (r < 0) {
            return r;
        }
        c->keep = depth;
    }
    return 0;
}

int
vmc_consolidate(struct vmc_image *top, const struct vmc_consolidate_opts *o,
                struct vmc_consolidate_result *res, struct vmc_error *err)
{
    static const struct vmc_consolidate_opts defaults;
    struct cons c = { .top = top, .err = err, .res = res };
    enum vmc_consolidate_method m = VMC_CONSOLIDATE_NONE;
    unsigned i;
    int r;

    memset(res, 0, sizeof(*res));
    c.o = o ? o : &defaults;
    r = collect_layers(&c);
    if (r < 0) {
        goto out;
    }
    if (c.keep < 3) {
        /* At most one intermediate layer: already consolidated. */
        if (c.keep >= 1) {
            snprintf(res->merged, sizeof(res->merged), "%s",
                     vmc_image_filename(c.layers[c.keep == 2 ? 1 : 0]));
        }
        res->layers_merged = c.keep >= 2 ? 1 : 0;
        goto out;
    }
    res->layers_merged = c.keep - 1;
    if (!vmc_image_is_writable(top)) {
        r = vmc_error_set(err, -EROFS, "'%s' is opened read-only",
                          vmc_image_filename(top));
        goto out;
    }
    c.buf = malloc(OPS_BUF_SIZE);
    if (!c.buf) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    ops_progress_init(&c.progress, NULL, NULL, 0);
    r = walk(&c, measure_fn);
    if (r == 0) {
        r = find_users(&c);
    }
    if (r == 0) {
        r = choose(&c, &m);
    }
    if (r < 0) {
        goto out;
    }
    res->method = m;
    switch (m) {
    case VMC_CONSOLIDATE_COMMIT:
        r = do_commit(&c);
        break;
    case VMC_CONSOLIDATE_PULL:
        r = do_pull(&c);
        break;
    default:
        r = do_new_layer(&c);
        break;
    }
    if (r == -EBUSY && c.o->method == VMC_CONSOLIDATE_NONE &&
        m != VMC_CONSOLIDATE_NEW_LAYER) {
        /* Locked by another process: write a new layer instead. */
        res->method = VMC_CONSOLIDATE_NEW_LAYER;
        res->bytes_moved = 0;
        r = do_new_layer(&c);
    }
    if (r == 0) {
        ops_progress_finish(&c.progress);
    }
out:
    for (i = 0; c.user && i < c.n; i++) {
        free(c.user[i]);
    }
    free(c.user);
    free(c.layers);
    free(c.buf);
    return r;
}
