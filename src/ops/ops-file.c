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
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/ops-file.h"
#include "ops/ops-internal.h"

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
ops_tmp_create(const char *final, char **tmp_out, int *fd_out,
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
    if (fd_out) {
        *fd_out = fd;
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
    int fd, r = 0;

    if (!dir) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        r = -errno;
        vmc_error_set(err, r, "cannot sync directory '%s': %s", dir,
                      strerror(-r));
    }
    if (fd >= 0) {
        close(fd);
    }
    free(dir);
    return r;
}

int
ops_rename(const char *tmp, const char *final, bool replace,
           struct vmc_error *err)
{
    int r;

    if (replace) {
        r = rename(tmp, final);
    } else {
        r = renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE);
        if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
            /* No RENAME_NOREPLACE here: link + unlink is just as
             * exclusive. */
            r = link(tmp, final);
            if (r == 0) {
                unlink(tmp);
            }
        }
    }
    if (r < 0) {
        r = -errno;
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
    int sfd;
    int dfd;
    struct piece *pieces;
    size_t npieces;
    pthread_mutex_t lock;
    size_t next;
    int error;              /* first failure */
    uint64_t fail_off;
};

/* Copy [off, off+len) at the same offset; -errno on failure. */
static int
copy_range(int sfd, int dfd, uint64_t off, uint64_t len)
{
    while (len > 0) {
        loff_t in = (loff_t)off, out = (loff_t)off;
        ssize_t n = copy_file_range(sfd, &in, dfd, &out, len, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;    /* the source shrank under us */
        }
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static void *
range_worker(void *arg)
{
    struct range_copy *rc = arg;

    for (;;) {
        struct piece p;
        int r;

        pthread_mutex_lock(&rc->lock);
        if (rc->error || rc->next == rc->npieces) {
            pthread_mutex_unlock(&rc->lock);
            return NULL;
        }
        p = rc->pieces[rc->next++];
        pthread_mutex_unlock(&rc->lock);
        r = copy_range(rc->sfd, rc->dfd, p.off, p.len);
        if (r < 0) {
            pthread_mutex_lock(&rc->lock);
            if (!rc->error) {
                rc->error = r;
                rc->fail_off = p.off;
            }
            pthread_mutex_unlock(&rc->lock);
            return NULL;
        }
    }
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
copy_extents(int sfd, int dfd, uint64_t size, unsigned workers,
             uint64_t *copied, const char *src, const char *dst,
             struct vmc_error *err)
{
    struct range_copy rc = { .sfd = sfd, .dfd = dfd };
    pthread_t tids[COPY_MAX_WORKERS];
    unsigned started = 0, i;
    int r;

    r = list_pieces(sfd, size, &rc.pieces, &rc.npieces, copied);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot find the data extents of '%s': "
                             "%s", src, strerror(-r));
    }
    /* Probe with the first piece alone: an unsupported combination is
     * reported before any thread starts. */
    if (rc.npieces > 0) {
        r = copy_range(sfd, dfd, rc.pieces[0].off, rc.pieces[0].len);
        if (r < 0) {
            free(rc.pieces);
            if (is_unsupported(r)) {
                return -EOPNOTSUPP;
            }
            return vmc_error_set(err, r, "error while copying '%s' to '%s' "
                                 "at offset 0: %s", src, dst, strerror(-r));
        }
        rc.next = 1;
    }
    pthread_mutex_init(&rc.lock, NULL);
    workers = workers < 1 ? 1 : workers > COPY_MAX_WORKERS ?
              COPY_MAX_WORKERS : workers;
    for (i = 1; i < workers && rc.npieces - rc.next > i; i++) {
        if (pthread_create(&tids[started], NULL, range_worker, &rc) != 0) {
            break;
        }
        started++;
    }
    range_worker(&rc);
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
ops_copy_file(const char *src_path, int dfd, const char *dst_name,
              bool try_reflink, bool thick, unsigned workers,
              enum ops_copy_result *how, uint64_t *copied,
              struct vmc_error *err)
{
    struct stat st;
    int sfd, r;

    *copied = 0;
    sfd = open(src_path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0 || fstat(sfd, &st) < 0) {
        r = -errno;
        vmc_error_set(err, r, "could not open '%s': %s", src_path,
                      strerror(-r));
        goto out;
    }
    if (try_reflink && !thick && ioctl(dfd, FICLONE, sfd) == 0) {
        *how = OPS_COPY_REFLINK;
        r = 0;
        goto out;
    }
    r = copy_extents(sfd, dfd, (uint64_t)st.st_size, workers, copied,
                     src_path, dst_name, err);
    if (r == -EOPNOTSUPP) {
        if (ftruncate(dfd, 0) < 0) {
            r = -errno;
            vmc_error_set(err, r, "cannot truncate '%s': %s", dst_name,
                          strerror(-r));
        }
        goto out;
    }
    if (r < 0) {
        goto out;
    }
    *how = OPS_COPY_RANGE;
    if (ftruncate(dfd, st.st_size) < 0) {
        r = -errno;
        vmc_error_set(err, r, "cannot set the length of '%s': %s", dst_name,
                      strerror(-r));
        goto out;
    }
    if (thick && st.st_size > 0 && fallocate(dfd, 0, 0, st.st_size) < 0) {
        r = -errno;
        vmc_error_set(err, r, "cannot allocate %llu bytes for '%s': %s",
                      (unsigned long long)st.st_size, dst_name,
                      strerror(-r));
        goto out;
    }
    r = 0;
out:
    if (sfd >= 0) {
        close(sfd);
    }
    return r;
}
