/*
 * seal.c - the seal operations above the chain: seal a template (hash its
 * guest view in parallel, then let the seal hook write the seal), unseal
 * it, and verify every chunk with repair from a replica. The seal's file
 * formats and the verify-on-read hook are in src/chain/seal-hook.c; this
 * file uses the public API and engine.h only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmclone-seal.h"
#include "ops-internal.h"

#define DIGEST ENGINE_SEAL_DIGEST_LEN

/* ----------------------------------------------------- parallel hashing */

struct hash_job {
    struct vmc_image *img;
    const struct vmc_seal_info *st;   /* chunk geometry */
    uint8_t *out;                /* digests computed, or NULL */
    _Atomic uint64_t next;
    _Atomic int error;
    bool use_driver;             /* bypass verification on read */
    bool reuse_backing;          /* chunks of a sealed backing file */
};

static void *
hash_worker(void *arg)
{
    struct hash_job *j = arg;
    uint8_t *buf = malloc(j->st->chunk_size);
    uint64_t c;

    if (!buf) {
        atomic_store(&j->error, -ENOMEM);
        return NULL;
    }
    while ((c = atomic_fetch_add(&j->next, 1)) < j->st->nchunks &&
           !atomic_load(&j->error)) {
        uint64_t off = c * j->st->chunk_size;
        size_t len = (size_t)MIN(j->st->chunk_size,
                                 j->st->virtual_size - off);
        int r;

        if (j->reuse_backing &&
            engine_seal_backing_leaf(j->img, j->st->chunk_size, c,
                                     j->out + c * DIGEST)) {
            continue;       /* the sealed backing file's digest */
        }
        r = j->use_driver ? engine_seal_hash_chunk(j->img, c, buf,
                                                   j->out + c * DIGEST)
                          : vmc_image_read(j->img, buf, off, len);
        if (r == 0 && !j->use_driver) {
            r = engine_seal_digest(buf, len, j->out + c * DIGEST);
        }
        if (r < 0) {
            atomic_store(&j->error, r);
        }
    }
    free(buf);
    return NULL;
}

static int
hash_all(struct hash_job *j, unsigned threads)
{
    pthread_t tids[16];
    unsigned i, n = threads ? MIN(threads, 16u) : 2;

    for (i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, hash_worker, j) != 0) {
            atomic_store(&j->error, -EAGAIN);
            break;
        }
    }
    while (i--) {
        pthread_join(tids[i], NULL);
    }
    return atomic_load(&j->error);
}

/* ---------------------------------------------------------------- seal */

int
vmc_image_seal(const char *path, uint32_t chunk_size, unsigned threads,
               const struct vmc_open_opts *opts, struct vmc_seal_info *info,
               struct vmc_error *err)
{
    struct vmc_open_opts oo = opts ? *opts : (struct vmc_open_opts){ 0 };
    struct vmc_seal_info geom = { 0 };
    struct vmc_seal_info have;
    struct hash_job job = { 0 };
    struct vmc_image *img = NULL;
    uint8_t *leaves = NULL;
    int r, r2;

    if (!chunk_size) {
        chunk_size = VMC_SEAL_DEFAULT_CHUNK;
    }
    if (!is_power_of_2(chunk_size) || chunk_size < 4096 ||
        chunk_size > (16u << 20)) {
        return vmc_error_set(err, -EINVAL, "chunk size must be a power of "
                             "two between 4 KiB and 16 MiB");
    }
    oo.flags |= VMC_OPEN_RDWR | VMC_OPEN_UNSEAL;
    r = vmc_image_open(&img, path, &oo, err);
    if (r < 0) {
        return r;
    }
    vmc_image_seal_info(img, &have);
    if (have.sealed) {
        r = vmc_error_set(err, -EALREADY, "'%s' is already sealed", path);
        goto out;
    }
    geom.chunk_size = chunk_size;
    geom.virtual_size = vmc_image_size(img);
    geom.nchunks = DIV_ROUND_UP(geom.virtual_size, chunk_size);
    leaves = malloc(geom.nchunks ? geom.nchunks * DIGEST : 1);
    if (!leaves) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    job.img = img;
    job.st = &geom;
    job.out = leaves;
    job.reuse_backing = true;
    r = hash_all(&job, threads);
    if (r < 0) {
        vmc_error_set(err, r, "cannot read '%s': %s", path, strerror(-r));
        goto out;
    }
    r = vmc_image_flush(img);
    if (r < 0) {
        vmc_error_set(err, r, "cannot seal '%s': %s", path, strerror(-r));
        goto out;
    }
    r = engine_seal_write(img, path, chunk_size, leaves, info, err);
out:
    r2 = vmc_image_close(img);
    if (r == 0 && r2 < 0) {
        r = vmc_error_set(err, r2, "cannot close '%s': %s", path,
                          strerror(-r2));
    }
    if (r == 0 && chmod(path, 0444) < 0) {
        r = vmc_error_set(err, -errno, "cannot make '%s' read-only: %s", path,
                          strerror(errno));
    }
    free(leaves);
    return r;
}

int
vmc_image_unseal(const char *path, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .flags = VMC_OPEN_RDWR | VMC_OPEN_UNSEAL |
                                         VMC_OPEN_NO_BACKING };
    struct stat stt;
    struct vmc_image *img = NULL;
    int r;

    if (stat(path, &stt) == 0) {
        chmod(path, (stt.st_mode & 07777) | S_IWUSR);
    }
    r = vmc_image_open(&img, path, &oo, err);
    if (r == 0) {
        r = engine_seal_clear_ext(img, err);
    }
    if (img) {
        vmc_image_close(img);
    }
    if (r == 0) {
        r = engine_seal_remove_sidecar(path, err);
    }
    return r;
}

/* -------------------------------------------------------------- verify */

/* Write the replica's bytes for chunk @c into @path at the host offsets
 * of @img's mapping; -ENOTSUP if the chunk is not plain data there. */
static int
plan_inplace(struct vmc_image *img, const struct vmc_seal_info *st, uint64_t c,
             uint64_t *runs, size_t *nruns, size_t cap)
{
    uint64_t off = c * st->chunk_size;
    uint64_t end = MIN(off + st->chunk_size, st->virtual_size);

    *nruns = 0;
    while (off < end) {
        struct vmc_block_status bs;
        int r = vmc_image_block_status(img, off, end - off, false, &bs);

        if (r < 0) {
            return r;
        }
        if (vmc_image_format(img) == VMC_FMT_RAW) {
            bs.flags = VMC_BS_DATA | VMC_BS_OFFSET;
            bs.host_offset = off;
        }
        if ((bs.flags & (VMC_BS_DATA | VMC_BS_OFFSET)) !=
            (VMC_BS_DATA | VMC_BS_OFFSET) || (bs.flags & VMC_BS_COMPRESSED) ||
            *nruns + 3 > cap) {
            return -ENOTSUP;
        }
        runs[(*nruns)++] = off;
        runs[(*nruns)++] = bs.host_offset;
        runs[(*nruns)++] = bs.length;
        off += bs.length;
    }
    return 0;
}

static int
repair_chunks(const char *path, struct vmc_image *img,
              const struct vmc_seal_info *st,
              const uint64_t *bad, uint64_t nbad, const char *replica,
              struct vmc_error *err)
{
    struct vmc_open_opts ro = { .flags = VMC_OPEN_FORCE_SHARE };
    struct vmc_image *rep = NULL;
    struct vmc_seal_info rs;
    struct hio_file *f = NULL;
    uint64_t *plan = NULL, runs[3 * 64];
    size_t *nplan = NULL;
    uint8_t *buf = NULL;
    uint64_t i;
    size_t k;
    int r;

    r = vmc_image_open(&rep, replica, &ro, err);
    if (r < 0) {
        vmc_error_prepend(err, "cannot open replica");
        return r;
    }
    vmc_image_seal_info(rep, &rs);
    if (!rs.sealed || memcmp(rs.root, st->root, DIGEST) ||
        rs.chunk_size != st->chunk_size) {
        r = vmc_error_set(err, -EINVAL, "replica '%s' does not carry the same "
                          "seal as '%s'", replica, path);
        goto out;
    }
    plan = calloc(nbad * 3 * 64, sizeof(*plan));
    nplan = calloc(nbad, sizeof(*nplan));
    buf = malloc(st->chunk_size);
    if (!plan || !nplan || !buf) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < nbad; i++) {
        r = plan_inplace(img, st, bad[i], runs, &nplan[i], 3 * 64);
        if (r < 0) {
            r = vmc_error_set(err, r, "chunk at offset %" PRIu64 " of '%s' "
                              "is not plain data (metadata damage?): "
                              "replace the image with the replica instead",
                              bad[i] * st->chunk_size, path);
            goto out;
        }
        memcpy(plan + i * 3 * 64, runs, nplan[i] * sizeof(*runs));
    }
    /* Take the image for writing (nobody else may use it meanwhile). */
    r = engine_file_open(&f, path, O_RDWR, 0);
    if (r == 0) {
        r = engine_file_lock_exclusive_write(f);
    }
    if (r < 0) {
        r = vmc_error_set(err, r, "cannot open '%s' for repair: %s", path,
                          strerror(-r));
        goto out;
    }
    for (i = 0; i < nbad && r == 0; i++) {
        uint64_t off = bad[i] * st->chunk_size;
        size_t len = (size_t)MIN(st->chunk_size, st->virtual_size - off);

        r = vmc_image_read(rep, buf, off, len);   /* verified by its seal */
        for (k = 0; r == 0 && k < nplan[i]; k += 3) {
            const uint64_t *p = plan + i * 3 * 64 + k;
            r = engine_file_pwrite(f, buf + (p[0] - off), p[2], p[1]);
        }
    }
    if (r == 0) {
        r = engine_file_sync(f);
    }
    if (r < 0) {
        vmc_error_set(err, r, "repair of '%s' failed: %s", path,
                      strerror(-r));
    }
out:
    engine_file_close(f);
    vmc_image_close(rep);
    free(plan);
    free(nplan);
    free(buf);
    return r;
}

int
vmc_image_verify(const char *path, const char *repair_from, unsigned threads,
                 struct vmc_verify_result *res, vmc_verify_report_fn report,
                 void *opaque, struct vmc_error *err)
{
    struct vmc_open_opts ro = { .flags = VMC_OPEN_FORCE_SHARE };
    struct vmc_image *img = NULL;
    struct hash_job job = { 0 };
    uint8_t *digests = NULL;
    uint64_t *bad = NULL, nbad = 0, c;
    struct vmc_seal_info info;
    const struct vmc_seal_info *st = &info;
    int r;

    memset(res, 0, sizeof(*res));
    r = vmc_image_open(&img, path, &ro, err);
    if (r < 0) {
        return r;
    }
    vmc_image_seal_info(img, &info);
    if (!info.sealed) {
        r = vmc_error_set(err, -ENOTSUP, "'%s' is not sealed", path);
        goto out;
    }
    digests = malloc(st->nchunks ? st->nchunks * DIGEST : 1);
    bad = malloc(st->nchunks ? st->nchunks * sizeof(*bad) : 1);
    if (!digests || !bad) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    job.img = img;
    job.st = st;
    job.out = digests;
    job.use_driver = true;
    r = hash_all(&job, threads);
    if (r < 0) {
        vmc_error_set(err, r, "cannot read '%s': %s", path, strerror(-r));
        goto out;
    }
    res->chunks = st->nchunks;
    for (c = 0; c < st->nchunks; c++) {
        if (!engine_seal_chunk_ok(img, c, digests + c * DIGEST)) {
            bad[nbad++] = c;
            if (report) {
                report(c * st->chunk_size,
                       MIN(st->chunk_size, st->virtual_size -
                                           c * st->chunk_size),
                       false, opaque);
            }
        }
    }
    res->corrupt = nbad;
    if (!nbad || !repair_from) {
        goto out;
    }
    r = repair_chunks(path, img, st, bad, nbad, repair_from, err);
    if (r < 0) {
        goto out;
    }
    /* Re-verify what was repaired, from the file. */
    vmc_image_close(img);
    img = NULL;
    r = vmc_image_open(&img, path, &ro, err);
    if (r < 0) {
        goto out;
    }
    for (c = 0; c < nbad; c++) {
        uint64_t off = bad[c] * st->chunk_size;
        uint64_t len = MIN(st->chunk_size, vmc_image_size(img) - off);

        if (engine_seal_verify(img, off, len) == 0) {
            res->repaired++;
            if (report) {
                report(off, len, true, opaque);
            }
        }
    }
out:
    vmc_image_close(img);
    free(digests);
    free(bad);
    return r;
}
