/*
 * ops-file.c - host file helpers of the clone operations: temporary
 * files created next to their final name and renamed into place (so a
 * crash never leaves a half-written image under the final name), and the
 * file-level copy paths of a full clone.
 *
 * File-level copy: FICLONE shares every extent of the source (XFS with
 * reflink=1, btrfs); otherwise copy_file_range copies the data extents
 * found with SEEK_DATA/SEEK_HOLE, in pieces handed out to a few threads,
 * and leaves the holes as holes. The kernel copies page cache to page
 * cache without passing the data through user space (and remaps extents
 * itself where the filesystem can).
 *
 * Every call that changes a file or a directory goes through the host
 * files of engine.h (the I/O layer underneath), so tests can inject a
 * failure or a crash at each of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops-file.h"
#include "ops-internal.h"

/* Largest piece one copy_file_range worker takes at a time. */
#define COPY_PIECE (32ull << 20)
#define COPY_MAX_WORKERS 8

char *
ops_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        return strdup(".");
    }
    if (slash == path) {
        return strdup("/");
    }
    return strndup(path, (size_t)(slash - path));
}

static mode_t
file_mode(void)
{
    static mode_t mask = (mode_t)-1;

    if (mask == (mode_t)-1) {
        mask = umask(022);
        umask(mask);
    }
    return 0666 & ~mask;
}

int
ops_tmp_create(const char *final, char **tmp_out, struct hio_file **f_out,
               struct vmc_error *err)
{
    const char *slash = strrchr(final, '/');
    const char *base = slash ? slash + 1 : final;
    int dirlen = slash ? (int)(slash - final + 1) : 0;
    char *tmp = NULL;
    int fd;

    if (!*base) {
        return vmc_error_set(err, -EINVAL, "'%s' is not a file name", final);
    }
    if (asprintf(&tmp, "%.*s.%s.vmc-XXXXXX", dirlen, final, base) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;

        vmc_error_set(err, r, "could not create a temporary file next to "
                      "'%s': %s", final, strerror(-r));
        free(tmp);
        return r;
    }
    if (fchmod(fd, file_mode()) < 0) {
        int r = -errno;

        close(fd);
        unlink(tmp);
        vmc_error_set(err, r, "cannot set the mode of '%s': %s", tmp,
                      strerror(-r));
        free(tmp);
        return r;
    }
    if (f_out) {
        int r = engine_file_adopt_fd(f_out, fd, tmp, true);

        if (r < 0) {
            unlink(tmp);
            free(tmp);
            return vmc_error_set(err, r, "out of memory");
        }
    } else {
        close(fd);
    }
    *tmp_out = tmp;
    return 0;
}

int
ops_fsync_parent(const char *path, struct vmc_error *err)
{
    char *dir = ops_dirname(path);
    int r;

    if (!dir) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = engine_sync_dir(dir);
    if (r < 0) {
        vmc_error_set(err, r, "cannot sync directory '%s': %s", dir,
                      strerror(-r));
    }
    free(dir);
    return r;
}

int
ops_rename(const char *tmp, const char *final, bool replace,
           struct vmc_error *err)
{
    int r = engine_rename(tmp, final, !replace);

    if (r < 0) {
        if (r == -EEXIST) {
            return vmc_error_set(err, r, "'%s' already exists (use --force "
                                 "to replace it)", final);
        }
        return vmc_error_set(err, r, "cannot rename '%s' to '%s': %s", tmp,
                             final, strerror(-r));
    }
    return 0;
}

int
ops_file_allocated(const char *path, uint64_t *out)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        return -errno;
    }
    *out = (uint64_t)st.st_blocks * 512;
    return 0;
}

bool
ops_same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* ------------------------------------------------------ copy_file_range */

struct piece {
    uint64_t off;
    uint64_t len;
};

struct range_copy {
    struct hio_file *src;
    struct hio_file *dst;
    struct piece *pieces;
    size_t npieces;
    pthread_mutex_t lock;
    size_t next;
    int error;              /* first failure */
    uint64_t fail_off;
    uint64_t done, total;   /* data bytes copied, of all pieces */
    vmc_progress_fn progress;   /* called by the calling thread only */
    void *opaque;
    uint64_t scale;         /* the total progress reports (0: data bytes) */
};

/* Report @done of the data bytes, on the caller's scale when it gave one
 * (a guest size: the data bytes are a part of it). */
static void
report_copied(const struct range_copy *rc, uint64_t done)
{
    uint64_t scale = rc->scale ? rc->scale : rc->total;

    rc->progress(rc->total ? (uint64_t)((double)done / rc->total * scale)
                           : scale, scale, rc->opaque);
}

/* Copy pieces until none is left or one failed; @rc->progress is called
 * when @reporter (the caller's own thread) finishes a piece. */
static void
copy_pieces(struct range_copy *rc, bool reporter)
{
    for (;;) {
        struct piece p;
        uint64_t done;
        int r;

        pthread_mutex_lock(&rc->lock);
        if (rc->error || rc->next == rc->npieces) {
            pthread_mutex_unlock(&rc->lock);
            return;
        }
        p = rc->pieces[rc->next++];
        pthread_mutex_unlock(&rc->lock);
        r = engine_file_copy_range(rc->src, rc->dst, p.off, p.len);
        if (r == 0) {
            /* Overlap the writeback with the rest of the copy: the final
             * data sync then waits for little. */
            engine_file_start_writeback(rc->dst, p.off, p.len);
        }
        pthread_mutex_lock(&rc->lock);
        if (r < 0 && !rc->error) {
            rc->error = r;
            rc->fail_off = p.off;
        }
        rc->done += r < 0 ? 0 : p.len;
        done = rc->done;
        pthread_mutex_unlock(&rc->lock);
        if (r < 0) {
            return;
        }
        if (reporter && rc->progress) {
            report_copied(rc, done);
        }
    }
}

static void *
range_worker(void *arg)
{
    copy_pieces(arg, false);
    return NULL;
}

/* The data extents of @fd, cut into pieces of at most COPY_PIECE. */
static int
list_pieces(int fd, uint64_t size, struct piece **out, size_t *n_out,
            uint64_t *bytes)
{
    struct piece *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t off = 0;

    *bytes = 0;
    while (off < size) {
        off_t data = lseek(fd, (off_t)off, SEEK_DATA);
        off_t hole;

        if (data < 0) {
            if (errno == ENXIO) {
                break;
            }
            if (errno == EINVAL) {  /* no SEEK_DATA: all data */
                data = (off_t)off;
                hole = (off_t)size;
                goto add;
            }
            free(v);
            return -errno;
        }
        hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0) {
            free(v);
            return -errno;
        }
add:
        if ((uint64_t)hole > size) {
            hole = (off_t)size;
        }
        for (off = (uint64_t)data; off < (uint64_t)hole; ) {
            uint64_t len = ops_min((uint64_t)hole - off, COPY_PIECE);

            if (n == cap) {
                struct piece *nv;

                cap = cap ? cap * 2 : 64;
                nv = realloc(v, cap * sizeof(*v));
                if (!nv) {
                    free(v);
                    return -ENOMEM;
                }
                v = nv;
            }
            v[n].off = off;
            v[n].len = len;
            n++;
            *bytes += len;
            off += len;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

static bool
is_unsupported(int r)
{
    return r == -EXDEV || r == -ENOSYS || r == -EOPNOTSUPP ||
           r == -EINVAL || r == -ENOTTY || r == -EBADF;
}

static int
copy_extents(struct hio_file *sf, struct hio_file *df, uint64_t size,
             unsigned workers, const struct ops_copy_progress *cp,
             uint64_t *copied, const char *src, const char *dst,
             struct vmc_error *err)
{
    struct range_copy rc = { .src = sf, .dst = df, .progress = cp->fn,
                             .opaque = cp->opaque, .scale = cp->total };
    pthread_t tids[COPY_MAX_WORKERS];
    unsigned started = 0, i;
    int r;

    r = list_pieces(engine_file_fd(sf), size, &rc.pieces, &rc.npieces, copied);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot find the data extents of '%s': "
                             "%s", src, strerror(-r));
    }
    /* Probe with the first piece alone: an unsupported combination is
     * reported before any thread starts. */
    if (rc.npieces > 0) {
        r = engine_file_copy_range(sf, df, rc.pieces[0].off, rc.pieces[0].len);
        if (r < 0) {
            free(rc.pieces);
            if (is_unsupported(r)) {
                return -EOPNOTSUPP;
            }
            return vmc_error_set(err, r, "error while copying '%s' to '%s' "
                                 "at offset 0: %s", src, dst, strerror(-r));
        }
        rc.next = 1;
        rc.done = rc.pieces[0].len;
    }
    rc.total = *copied;
    pthread_mutex_init(&rc.lock, NULL);
    workers = workers < 1 ? 1 : workers > COPY_MAX_WORKERS ?
              COPY_MAX_WORKERS : workers;
    for (i = 1; i < workers && rc.npieces - rc.next > i; i++) {
        if (pthread_create(&tids[started], NULL, range_worker, &rc) != 0) {
            break;
        }
        started++;
    }
    copy_pieces(&rc, true);
    for (i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    pthread_mutex_destroy(&rc.lock);
    free(rc.pieces);
    if (rc.error) {
        return vmc_error_set(err, rc.error, "error while copying '%s' to "
                             "'%s' at offset %llu: %s", src, dst,
                             (unsigned long long)rc.fail_off,
                             strerror(-rc.error));
    }
    return 0;
}

int
ops_copy_file(const char *src_path, struct hio_file *df, const char *dst_name,
              bool try_reflink, bool thick, unsigned workers,
              const struct ops_copy_progress *cp,
              enum ops_copy_result *how, uint64_t *copied,
              struct vmc_error *err)
{
    struct hio_file *sf = NULL;
    uint64_t size = 0;
    int r, r2;

    *copied = 0;
    r = engine_file_open(&sf, src_path, O_RDONLY, 0);
    if (r == 0) {
        r = engine_file_length(sf, &size);
    }
    if (r < 0) {
        vmc_error_set(err, r, "could not open '%s': %s", src_path,
                      strerror(-r));
        goto out;
    }
    if (try_reflink && !thick) {
        r = engine_file_reflink(df, sf);
        if (r == 0) {
            *how = OPS_COPY_REFLINK;
            goto out;
        }
        /* Fall back to a copy unless the filesystem is out of space or
         * failing: the copy would fail too. */
        if (r == -ENOSPC || r == -EDQUOT || r == -EIO) {
            vmc_error_set(err, r, "cannot reflink '%s' to '%s': %s",
                          src_path, dst_name, strerror(-r));
            goto out;
        }
    }
    r = copy_extents(sf, df, size, workers, cp, copied, src_path, dst_name,
                     err);
    if (r == -EOPNOTSUPP) {
        r2 = engine_file_truncate(df, 0);
        if (r2 < 0) {
            r = vmc_error_set(err, r2, "cannot truncate '%s': %s", dst_name,
                              strerror(-r2));
        }
        goto out;
    }
    if (r < 0) {
        goto out;
    }
    *how = OPS_COPY_RANGE;
    r = engine_file_truncate(df, size);
    if (r < 0) {
        vmc_error_set(err, r, "cannot set the length of '%s': %s", dst_name,
                      strerror(-r));
        goto out;
    }
    if (thick && size > 0) {
        r = engine_file_allocate(df, 0, size);
        if (r < 0) {
            vmc_error_set(err, r, "cannot allocate %llu bytes for '%s': %s",
                          (unsigned long long)size, dst_name, strerror(-r));
            goto out;
        }
    }
out:
    engine_file_close(sf);
    return r;
}
