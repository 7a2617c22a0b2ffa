/*
 * clone.c - linked clones (new qcow2 overlays of a base) and full clones
 * (a standalone copy of a guest view, by the fastest correct path).
 *
 * Linked clones. The base is opened once, alone, for its format and
 * size. The engine creates a prototype clone in memory (vmc_image_create()
 * into a memfd, with an unsafe backing reference: header, refcount table
 * and block, L1); each clone is stamped from its bytes under a temporary
 * name (only the non-zero blocks are written, a few KiB; the rest stays a
 * hole) and synced, many clones in parallel, which lets the filesystem
 * commit them in few journal transactions. (Without memfd, the engine
 * writes the first clone itself.) Then every
 * clone is renamed into place and each directory synced once.
 *
 * Crash safety: a clone only appears under its final name by a rename of
 * a complete, durable file; a crash before leaves at most a hidden
 * ".NAME.vmc-XXXXXX" file, never a half-written NAME.
 *
 * Full clones: see vmc_clone_full() in vmclone-ops.h for the choice of
 * method; the file-level paths are in ops-file.c, the guest-view copy is
 * vmc_convert() with workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops-file.h"
#include "ops-internal.h"

#define STAMP_BLOCK 4096u
#define SYNC_WORKERS 8

void
vmc_clone_opts_init(struct vmc_clone_opts *o)
{
    memset(o, 0, sizeof(*o));
    vmc_create_opts_init(&o->create);
    o->create.extended_l2 = true;
    o->create.cluster_size = 128 * 1024;
    o->create.compat = 3;
}

/* ------------------------------------------------------- backing names */

/* Canonical absolute path of the existing directory holding @path. */
static char *
real_dir_of(const char *path)
{
    char *dir = ops_dirname(path);
    char *real;

    if (!dir) {
        return NULL;
    }
    real = realpath(dir, NULL);
    free(dir);
    return real;
}

/* Path of @target relative to directory @from (both canonical). */
static char *
relative_path(const char *from, const char *target)
{
    size_t common = 0, i, ups = 0;
    const char *rest;
    char *out, *p;

    /* Longest common prefix ending at a directory boundary. */
    for (i = 0; from[i] && from[i] == target[i]; i++) {
        if (from[i] == '/') {
            common = i;
        }
    }
    if (!from[i] && target[i] == '/') {
        common = i;
    }
    if (common == 0) {
        return NULL;        /* only "/" in common: not the same tree */
    }
    for (p = (char *)from + common; *p; p++) {
        if (*p == '/') {
            ups++;
        }
    }
    rest = target + common + 1;
    out = malloc(ups * 3 + strlen(rest) + 1);
    if (!out) {
        return NULL;
    }
    p = out;
    for (i = 0; i < ups; i++) {
        memcpy(p, "../", 3);
        p += 3;
    }
    strcpy(p, rest);
    return out;
}

int
vmc_clone_backing_name(const char *base, const char *new_path,
                       bool absolute, char **out, struct vmc_error *err)
{
    char *rbase = NULL, *rdir = NULL, *bdir = NULL, *rel = NULL;
    struct stat sb, sd;
    int r = 0;

    rbase = realpath(base, NULL);
    if (!rbase) {
        r = -errno;
        return vmc_error_set(err, r, "could not open base '%s': %s", base,
                             strerror(-r));
    }
    rdir = real_dir_of(new_path);
    if (!rdir) {
        r = errno == ENOMEM ? -ENOMEM : -ENOENT;
        vmc_error_set(err, r, "the directory of '%s' does not exist",
                      new_path);
        goto out;
    }
    if (!absolute && stat(rbase, &sb) == 0 && stat(rdir, &sd) == 0 &&
        sb.st_dev == sd.st_dev) {
        bdir = ops_dirname(rbase);
        if (bdir && !strcmp(bdir, rdir)) {
            rel = strdup(strrchr(rbase, '/') + 1);
        } else {
            rel = relative_path(rdir, rbase);
        }
    }
    if (rel) {
        *out = rel;
    } else {
        *out = rbase;
        rbase = NULL;
    }
out:
    free(rbase);
    free(rdir);
    free(bdir);
    return r;
}

/* ------------------------------------------------------- linked clones */

struct proto {
    char *backing;          /* backing name these bytes record */
    const uint8_t *parent_seal; /* the base's seal, recorded in each clone */
    uint8_t *data;
    uint64_t len;
};

struct clone_job {
    const char *name;
    char *tmp;
    struct hio_file *f;     /* the stamped file, open until synced */
    int error;
};

/* Create @job's temporary file with the engine; keep its bytes as the
 * prototype for further clones with the same backing name. */
static int
create_first(struct clone_job *job, const struct vmc_create_opts *co,
             struct proto *pr, bool keep, struct vmc_error *err)
{
    struct hio_file *f = NULL;
    uint64_t len = 0;
    int r;

    r = ops_tmp_create(job->name, &job->tmp, NULL, err);
    if (r < 0) {
        return r;
    }
    r = engine_image_create_with_parent_seal(job->tmp, co, pr->parent_seal, err);
    if (r < 0 || !keep) {
        return r;
    }
    free(pr->data);
    pr->data = NULL;
    pr->len = 0;
    r = engine_file_open(&f, job->tmp, O_RDONLY, 0);
    if (r == 0) {
        r = engine_file_length(f, &len);
    }
    if (r < 0) {
        engine_file_close(f);
        return vmc_error_set(err, r, "cannot read '%s': %s", job->tmp,
                             strerror(-r));
    }
    /* A fresh image is a few clusters plus the L1 table; only keep it
     * as a prototype when that is small. */
    if (len > 0 && len <= (64 << 20)) {
        pr->data = malloc((size_t)len);
        if (pr->data && engine_file_pread(f, pr->data, (size_t)len, 0) == 0) {
            pr->len = len;
        } else {
            free(pr->data);
            pr->data = NULL;
        }
    }
    engine_file_close(f);
    return 0;
}

/*
 * Build the prototype of a clone in memory: the engine creates the image
 * in a memfd (through its /proc/self/fd name), and we keep its bytes.
 * Returns -ENOTSUP when memfd or /proc is not available (the caller then
 * lets the engine write the first clone itself).
 */
static int
build_proto(const struct vmc_create_opts *co, struct proto *pr,
            struct vmc_error *err)
{
    char path[64];
    struct stat st;
    int fd, r;

    free(pr->data);
    pr->data = NULL;
    pr->len = 0;
    fd = memfd_create("vmc-clone-proto", MFD_CLOEXEC);
    if (fd < 0) {
        return -ENOTSUP;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (access(path, F_OK) < 0) {
        close(fd);
        return -ENOTSUP;
    }
    r = engine_image_create_with_parent_seal(path, co, pr->parent_seal, err);
    if (r < 0) {
        goto out;
    }
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (64 << 20)) {
        r = -ENOTSUP;
        goto out;
    }
    pr->data = malloc((size_t)st.st_size);
    if (!pr->data) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (pread(fd, pr->data, (size_t)st.st_size, 0) != st.st_size) {
        free(pr->data);
        pr->data = NULL;
        r = -ENOTSUP;
        goto out;
    }
    pr->len = (uint64_t)st.st_size;
out:
    close(fd);
    return r;
}

/* Write the prototype's non-zero blocks into a new temporary file. */
static int
stamp(struct clone_job *job, const struct proto *pr, struct vmc_error *err)
{
    uint64_t off = 0;
    int r;

    r = ops_tmp_create(job->name, &job->tmp, &job->f, err);
    if (r < 0) {
        return r;
    }
    while (off < pr->len) {
        uint64_t start, n;

        while (off < pr->len &&
               buffer_is_zero(pr->data + off, ops_min(STAMP_BLOCK,
                                                   pr->len - off))) {
            off += STAMP_BLOCK;
        }
        off = ops_min(off, pr->len);
        start = off;
        while (off < pr->len &&
               !buffer_is_zero(pr->data + off, ops_min(STAMP_BLOCK,
                                                    pr->len - off))) {
            off += STAMP_BLOCK;
        }
        off = ops_min(off, pr->len);
        n = off - start;
        r = n ? engine_file_pwrite(job->f, pr->data + start, n, start) : 0;
        if (r < 0) {
            return vmc_error_set(err, r, "cannot write '%s': %s", job->tmp,
                                 strerror(-r));
        }
    }
    r = engine_file_truncate(job->f, pr->len);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot write '%s': %s", job->tmp,
                             strerror(-r));
    }
    return 0;
}

struct sync_pool {
    struct clone_job *jobs;
    size_t count;
    size_t next;
    pthread_mutex_t lock;
};

static void *
sync_worker(void *arg)
{
    struct sync_pool *p = arg;

    for (;;) {
        struct clone_job *job;

        pthread_mutex_lock(&p->lock);
        job = p->next < p->count ? &p->jobs[p->next++] : NULL;
        pthread_mutex_unlock(&p->lock);
        if (!job) {
            return NULL;
        }
        if (job->f) {
            job->error = engine_file_sync(job->f);
        }
    }
}

/* fdatasync every stamped file, from several threads. */
static int
sync_all(struct clone_job *jobs, size_t count, struct vmc_error *err)
{
    struct sync_pool p = { .jobs = jobs, .count = count };
    pthread_t tids[SYNC_WORKERS];
    unsigned started = 0, i;
    size_t j;

    pthread_mutex_init(&p.lock, NULL);
    for (i = 1; i < SYNC_WORKERS && i < count; i++) {
        if (pthread_create(&tids[started], NULL, sync_worker, &p) != 0) {
            break;
        }
        started++;
    }
    sync_worker(&p);
    for (i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    pthread_mutex_destroy(&p.lock);
    for (j = 0; j < count; j++) {
        if (jobs[j].error) {
            return vmc_error_set(err, jobs[j].error, "cannot sync '%s': %s",
                                 jobs[j].tmp, strerror(-jobs[j].error));
        }
    }
    return 0;
}

/* Refuse existing targets (unless forced) and the base itself. */
static int
check_names(const char *base, const char *const *names, size_t count,
            bool force, struct vmc_error *err)
{
    struct stat st;
    size_t i, j;

    for (i = 0; i < count; i++) {
        if (!names[i] || !names[i][0]) {
            return vmc_error_set(err, -EINVAL, "empty clone name");
        }
        if (ops_same_file(base, names[i])) {
            return vmc_error_set(err, -EINVAL, "'%s' is the base image",
                                 names[i]);
        }
        if (!force && lstat(names[i], &st) == 0) {
            return vmc_error_set(err, -EEXIST, "'%s' already exists (use "
                                 "--force to replace it)", names[i]);
        }
        for (j = 0; j < i && count <= 4096; j++) {
            if (!strcmp(names[i], names[j])) {
                return vmc_error_set(err, -EINVAL, "clone name '%s' given "
                                     "twice", names[i]);
            }
        }
    }
    return 0;
}

/* Open @base alone: its size, format and seal (*sealed, @seal). */
static int
open_base(const char *base, enum vmc_format fmt, uint64_t *size,
          enum vmc_format *fmt_out, uint8_t seal[ENGINE_PARENT_SEAL_LEN],
          bool *sealed, struct vmc_error *err)
{
    struct vmc_open_opts oo = {
        .format = fmt,
        .flags = VMC_OPEN_NO_BACKING,
    };
    struct vmc_image *img = NULL;
    int r;

    r = vmc_image_open(&img, base, &oo, err);
    if (r < 0) {
        vmc_error_prepend(err, "could not open base '%s'", base);
        return r;
    }
    *size = vmc_image_size(img);
    *fmt_out = vmc_image_format(img);
    *sealed = engine_parent_seal(img, seal) == 1;
    vmc_image_close(img);
    return 0;
}

/* Same directory as the previous name? (one directory sync each) */
static bool
same_dir(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;

    return la == lb && !strncmp(a, b, la);
}

int
vmc_clone_linked(const char *base, const char *const *names, size_t count,
                 const struct vmc_clone_opts *o, struct vmc_error *err)
{
    struct vmc_create_opts co = o->create;
    struct proto pr = { 0 };
    uint8_t base_seal[ENGINE_PARENT_SEAL_LEN];
    bool sealed = false;
    struct clone_job *jobs = NULL;
    char *name = NULL;
    uint64_t size = 0;
    enum vmc_format bfmt;
    size_t i;
    int r;

    if (count == 0) {
        return 0;
    }
    if (co.format != VMC_FMT_QCOW2) {
        return vmc_error_set(err, -EINVAL, "a linked clone must be a qcow2 "
                             "image");
    }
    r = check_names(base, names, count, o->force, err);
    if (r < 0) {
        return r;
    }
    r = open_base(base, o->base_format, &size, &bfmt, base_seal, &sealed,
                  err);
    if (r < 0) {
        return r;
    }
    pr.parent_seal = sealed ? base_seal : NULL;
    jobs = calloc(count, sizeof(*jobs));
    if (!jobs) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; i < count; i++) {
        jobs[i].name = names[i];
    }
    if (!co.size) {
        co.size = ops_align_up(size, OPS_SECTOR);
    }
    co.backing_format = bfmt;
    co.backing_unsafe = true;
    for (i = 0; i < count; i++) {
        r = vmc_clone_backing_name(base, names[i], o->absolute, &name, err);
        if (r < 0) {
            goto out;
        }
        if (!pr.backing || strcmp(pr.backing, name)) {
            free(pr.backing);
            pr.backing = name;
            co.backing_file = pr.backing;
            r = co.prealloc == VMC_PREALLOC_OFF ?
                build_proto(&co, &pr, err) : -ENOTSUP;
            if (r < 0 && r != -ENOTSUP) {
                name = NULL;
                goto out;
            }
        } else {
            free(name);
        }
        name = NULL;
        if (pr.data) {
            r = stamp(&jobs[i], &pr, err);
        } else {
            r = create_first(&jobs[i], &co, &pr,
                             count > 1 && co.prealloc == VMC_PREALLOC_OFF,
                             err);
        }
        if (r < 0) {
            goto out;
        }
    }
    r = sync_all(jobs, count, err);
    for (i = 0; r == 0 && i < count; i++) {
        r = ops_rename(jobs[i].tmp, jobs[i].name, o->force, err);
        if (r == 0) {
            free(jobs[i].tmp);
            jobs[i].tmp = NULL;
        }
    }
    for (i = 0; r == 0 && i < count; i++) {
        if (i + 1 == count || !same_dir(names[i], names[i + 1])) {
            r = ops_fsync_parent(names[i], err);
        }
    }
out:
    for (i = 0; i < count; i++) {
        engine_file_close(jobs[i].f);
        if (jobs[i].tmp) {
            unlink(jobs[i].tmp);
            free(jobs[i].tmp);
        }
    }
    free(jobs);
    free(pr.backing);
    free(pr.data);
    free(name);
    return r;
}

/* --------------------------------------------------------- full clones */

const char *
vmc_clone_method_name(enum vmc_clone_method m)
{
    switch (m) {
    case VMC_CLONE_REFLINK: return "reflink";
    case VMC_CLONE_COPY_FILE_RANGE: return "copy_file_range";
    case VMC_CLONE_COPY: return "copy";
    }
    return "none";
}

void
vmc_full_clone_opts_init(struct vmc_full_clone_opts *o)
{
    memset(o, 0, sizeof(*o));
    vmc_create_opts_init(&o->create);
}

static unsigned
auto_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 2 ? 2 : n > 4 ? 4 : (unsigned)n;
}

/* Can the source's file stand for the clone as it is? */
static bool
file_copy_possible(struct vmc_image *src, enum vmc_format out,
                   const struct vmc_full_clone_opts *o)
{
    struct vmc_image_info info;

    if (o->no_offload || o->custom_create ||
        (o->thick && out == VMC_FMT_QCOW2)) {
        return false;
    }
    vmc_image_get_info(src, &info);
    return info.format == out && !info.backing_file &&
           !vmc_image_backing(src) && !info.dirty && !info.corrupt &&
           info.nb_snapshots == 0;
}

/* The guest-view copy into @tmp (which exists, empty). */
static int
guest_copy(struct vmc_image *src, const char *tmp, enum vmc_format out,
           const struct vmc_full_clone_opts *o, unsigned workers,
           uint64_t *copied, struct vmc_error *err)
{
    struct vmc_convert_opts co;
    struct vmc_block_status bs;
    uint64_t off = 0, size = vmc_image_size(src);
    int r;

    vmc_convert_opts_init(&co);
    co.create = o->create;
    co.create.format = out;
    co.create.backing_file = NULL;
    if (o->thick) {
        co.create.prealloc = VMC_PREALLOC_FALLOC;
    }
    co.workers = workers;
    co.progress = o->progress;
    co.opaque = o->opaque;
    r = vmc_convert(src, tmp, &co, err);
    if (r < 0) {
        return r;
    }
    /* Report the bytes of data the guest view holds. */
    *copied = 0;
    while (off < size) {
        if (vmc_image_block_status(src, off, size - off, true, &bs) < 0 ||
            bs.length == 0) {
            break;
        }
        if (!(bs.flags & VMC_BS_ZERO) && (bs.flags & VMC_BS_ALLOCATED)) {
            *copied += bs.length;
        }
        off += bs.length;
    }
    return 0;
}

int
vmc_clone_full(struct vmc_image *src, const char *dst,
               const struct vmc_full_clone_opts *o,
               struct vmc_full_clone_result *res, struct vmc_error *err)
{
    enum vmc_format out = o->format ? o->format : vmc_image_format(src);
    unsigned workers = o->workers ? o->workers : auto_workers();
    const struct vmc_image *layer;
    struct stat st;
    enum ops_copy_result how;
    struct hio_file *f = NULL;
    char *tmp = NULL;
    int r;

    memset(res, 0, sizeof(*res));
    if (!o->force && lstat(dst, &st) == 0) {
        return vmc_error_set(err, -EEXIST, "'%s' already exists (use "
                             "--force to replace it)", dst);
    }
    for (layer = src; layer; layer = vmc_image_backing(layer)) {
        if (ops_same_file(dst, vmc_image_filename(layer))) {
            return vmc_error_set(err, -EINVAL, "target '%s' is the source "
                                 "image or one of its backing files", dst);
        }
    }
    r = ops_tmp_create(dst, &tmp, &f, err);
    if (r < 0) {
        return r;
    }
    r = -EOPNOTSUPP;
    if (file_copy_possible(src, out, o)) {
        struct ops_copy_progress cp = { o->progress, o->opaque,
                                        vmc_image_size(src) };

        r = ops_copy_file(vmc_image_filename(src), f, tmp, true, o->thick,
                          workers, &cp, &how, &res->bytes_copied, err);
        if (r == 0) {
            res->method = how == OPS_COPY_REFLINK ?
                          VMC_CLONE_REFLINK : VMC_CLONE_COPY_FILE_RANGE;
            r = engine_file_sync(f);
            if (r < 0) {
                vmc_error_set(err, r, "cannot sync '%s': %s", dst,
                              strerror(-r));
                goto out;
            }
            if (o->progress) {
                o->progress(vmc_image_size(src), vmc_image_size(src),
                            o->opaque);
            }
        }
    }
    if (r == -EOPNOTSUPP) {
        engine_file_close(f);
        f = NULL;
        res->method = VMC_CLONE_COPY;
        r = guest_copy(src, tmp, out, o, workers, &res->bytes_copied, err);
    }
    if (r < 0) {
        goto out;
    }
    r = ops_rename(tmp, dst, o->force, err);
    if (r == 0) {
        free(tmp);
        tmp = NULL;
        r = ops_fsync_parent(dst, err);
    }
out:
    engine_file_close(f);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return r;
}
