/*
 * hostio.c - host file I/O with fault injection (see hostio.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/hostio.h"

#define MIN_U64(a, b) ((a) < (b) ? (a) : (b))

static hio_fault_fn fault_hook;
static hio_log_fn write_log;

struct env_fault {
    int op;            /* enum hio_op or -1 for any */
    unsigned long nth;
    bool and_later;
    int err;           /* positive errno, or 0 = crash */
};

static struct env_fault env_faults[8];
static unsigned env_fault_count;
static atomic_ulong op_counter[HIO_OP_COUNT + 1];
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static const struct { const char *name; int err; } errno_names[] = {
    { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
    { "EROFS", EROFS }, { "EPERM", EPERM }, { "EINTR", EINTR },
    { "ENOMEM", ENOMEM }, { "crash", 0 },
};

static const char *const op_names[] = {
    "pread", "pwrite", "sync", "falloc", "truncate", "rename", "any",
};

static void
parse_env_faults(void)
{
    const char *env = getenv("VMCLONE_FAULT");
    char *copy, *tok, *save = NULL;

    if (!env || !*env) {
        return;
    }
    copy = strdup(env);
    if (!copy) {
        return;
    }
    for (tok = strtok_r(copy, ",", &save); tok && env_fault_count < 8;
         tok = strtok_r(NULL, ",", &save)) {
        char opname[16], nth[24], errname[16];
        struct env_fault ef = { .op = -2 };
        unsigned i;

        if (sscanf(tok, "%15[^:]:%23[^:]:%15s", opname, nth, errname) != 3) {
            continue;
        }
        for (i = 0; i < HIO_OP_COUNT + 1; i++) {
            if (!strcmp(opname, op_names[i])) {
                ef.op = i == HIO_OP_COUNT ? -1 : (int)i;
            }
        }
        ef.nth = strtoul(nth, NULL, 10);
        ef.and_later = strchr(nth, '+') != NULL;
        ef.err = -1;
        for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
            if (!strcmp(errname, errno_names[i].name)) {
                ef.err = errno_names[i].err;
            }
        }
        if (ef.op == -2 || ef.err < 0 || ef.nth == 0) {
            continue;
        }
        env_faults[env_fault_count++] = ef;
    }
    free(copy);
}

void
hio_set_fault_hook(hio_fault_fn fn)
{
    fault_hook = fn;
}

void
hio_set_write_log(hio_log_fn fn)
{
    write_log = fn;
}

/* Decide whether operation @op fails; 0 = go ahead. */
static int
fault_check(enum hio_op op, const struct hio_file *f, uint64_t off,
            uint64_t len)
{
    unsigned long n, n_any;
    unsigned i;

    if (fault_hook) {
        int r = fault_hook(op, f, off, len);
        if (r) {
            return r;
        }
    }
    pthread_once(&env_once, parse_env_faults);
    if (!env_fault_count) {
        return 0;
    }
    n = atomic_fetch_add(&op_counter[op], 1) + 1;
    n_any = atomic_fetch_add(&op_counter[HIO_OP_COUNT], 1) + 1;
    for (i = 0; i < env_fault_count; i++) {
        const struct env_fault *ef = &env_faults[i];
        unsigned long cnt = ef->op == -1 ? n_any : n;

        if (ef->op != -1 && ef->op != (int)op) {
            continue;
        }
        if (cnt == ef->nth || (ef->and_later && cnt > ef->nth)) {
            if (ef->err == 0) {
                _exit(99);
            }
            return -ef->err;
        }
    }
    return 0;
}

/* The hio_file for open descriptor @fd (of @path, described by @st);
 * @fd is closed on failure. */
static int
wrap_fd(struct hio_file **out, int fd, const char *path, bool writable,
        const struct stat *st)
{
    struct hio_file *f = calloc(1, sizeof(*f));

    if (!f || !(f->path = strdup(path))) {
        free(f);
        close(fd);
        return -ENOMEM;
    }
    f->fd = fd;
    f->writable = writable;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    *out = f;
    return 0;
}

int
hio_open(struct hio_file **out, const char *path, int flags, mode_t mode)
{
    struct stat st;
    int fd;

    fd = open(path, flags | O_CLOEXEC, mode);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    return wrap_fd(out, fd, path, (flags & O_ACCMODE) != O_RDONLY, &st);
}

/* What kind of file @st is, as refused by hio_open_image(); NULL if it
 * may be opened as an image. */
static const char *
refused_kind(const struct stat *st, bool allow_block)
{
    if (S_ISREG(st->st_mode)) {
        return NULL;
    }
    if (S_ISBLK(st->st_mode)) {
        return allow_block ? NULL : "a block device";
    }
    if (S_ISFIFO(st->st_mode)) {
        return "a FIFO";
    }
    if (S_ISSOCK(st->st_mode)) {
        return "a socket";
    }
    if (S_ISCHR(st->st_mode)) {
        return "a character device";
    }
    return S_ISDIR(st->st_mode) ? "a directory" : "not a regular file";
}

int
hio_open_image(struct hio_file **out, const char *path, int flags,
               bool allow_block, const char **kind)
{
    struct stat st;
    int fd, e;

    *kind = NULL;
    /* Look before opening (open(2) of a FIFO waits for a writer), then
     * open without blocking and look again at what was opened. */
    if (stat(path, &st) == 0 && (*kind = refused_kind(&st, allow_block))) {
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) < 0) {
        e = -errno;
        close(fd);
        return e;
    }
    if ((*kind = refused_kind(&st, allow_block))) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        e = -errno;
        close(fd);
        return e;
    }
    return wrap_fd(out, fd, path, (flags & O_ACCMODE) != O_RDONLY, &st);
}

int
hio_adopt_fd(struct hio_file **out, int fd, const char *path, bool writable)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return wrap_fd(out, fd, path, writable, &st);
}

void
hio_close(struct hio_file *f)
{
    if (!f) {
        return;
    }
    close(f->fd);
    free(f->path);
    free(f);
}

int
hio_pread(struct hio_file *f, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    int r;

    r = fault_check(HIO_PREAD, f, off, len);
    if (r) {
        return r;
    }
    while (len) {
        ssize_t n = pread(f->fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            memset(p, 0, len);   /* past EOF reads as zeros */
            return 0;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int
hio_pwrite(struct hio_file *f, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    int r;

    r = fault_check(HIO_PWRITE, f, off, len);
    if (r) {
        return r;
    }
    if (write_log) {
        write_log(HIO_LOG_WRITE, f, off, buf, len);   /* in program order */
    }
    while (len) {
        ssize_t n = pwrite(f->fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int
hio_sync(struct hio_file *f)
{
    int r = fault_check(HIO_SYNC, f, 0, 0);

    if (r == 0 && fdatasync(f->fd) < 0) {
        r = -errno;
    }
    if (r == 0 && write_log) {
        write_log(HIO_LOG_SYNC, f, 0, NULL, 0);
    }
    if (r < 0 && !f->sync_error) {
        f->sync_error = r;
    }
    return r;
}

int
hio_sync_failed(const struct hio_file *f)
{
    return f->sync_error;
}

int
hio_copy_range(struct hio_file *src, struct hio_file *dst, uint64_t off,
               uint64_t len)
{
    int r = fault_check(HIO_PWRITE, dst, off, len);

    if (r) {
        return r;
    }
    while (len > 0) {
        loff_t in = (loff_t)off, out = (loff_t)off;
        ssize_t n = copy_file_range(src->fd, &in, dst->fd, &out, len, 0);

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

void
hio_start_writeback(struct hio_file *f, uint64_t off, uint64_t len)
{
    (void)sync_file_range(f->fd, (off_t)off, (off_t)len,
                          SYNC_FILE_RANGE_WRITE);
}

int
hio_reflink(struct hio_file *dst, struct hio_file *src)
{
    int r = fault_check(HIO_PWRITE, dst, 0, 0);

    if (r) {
        return r;
    }
    return ioctl(dst->fd, FICLONE, src->fd) < 0 ? -errno : 0;
}

int
hio_rename(const char *from, const char *to, bool noreplace)
{
    struct hio_file target = { .fd = -1, .path = (char *)to };
    int r = fault_check(HIO_RENAME, &target, 0, 0);

    if (r) {
        return r;
    }
    if (!noreplace) {
        return rename(from, to) < 0 ? -errno : 0;
    }
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS) {
        return -errno;
    }
    /* No RENAME_NOREPLACE here: link + unlink is just as exclusive. */
    if (link(from, to) < 0) {
        return -errno;
    }
    unlink(from);
    return 0;
}

int
hio_sync_dir(const char *dir)
{
    struct hio_file d = { .fd = -1, .path = (char *)dir };
    int r = fault_check(HIO_SYNC, &d, 0, 0);

    if (r) {
        return r;
    }
    d.fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d.fd < 0) {
        return -errno;
    }
    r = fsync(d.fd) < 0 ? -errno : 0;
    close(d.fd);
    return r;
}

int
hio_truncate(struct hio_file *f, uint64_t len)
{
    int r = fault_check(HIO_TRUNCATE, f, len, 0);

    if (r) {
        return r;
    }
    if (ftruncate(f->fd, (off_t)len) < 0) {
        return -errno;
    }
    if (write_log) {
        write_log(HIO_LOG_TRUNCATE, f, len, NULL, 0);
    }
    return 0;
}

int
hio_length(struct hio_file *f, uint64_t *len)
{
    struct stat st;

    if (fstat(f->fd, &st) < 0) {
        return -errno;
    }
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(f->fd, 0, SEEK_END);
        if (end < 0) {
            return -errno;
        }
        *len = (uint64_t)end;
        return 0;
    }
    *len = (uint64_t)st.st_size;
    return 0;
}

int
hio_allocated_bytes(struct hio_file *f, uint64_t *bytes)
{
    struct stat st;

    if (fstat(f->fd, &st) < 0) {
        return -errno;
    }
    *bytes = (uint64_t)st.st_blocks * 512;
    return 0;
}

int
hio_allocate(struct hio_file *f, uint64_t off, uint64_t len)
{
    int r = fault_check(HIO_FALLOC, f, off, len);

    if (r) {
        return r;
    }
    if (fallocate(f->fd, 0, (off_t)off, (off_t)len) < 0) {
        return -errno;
    }
    return 0;
}

int
hio_zero_range(struct hio_file *f, uint64_t off, uint64_t len,
               bool may_punch)
{
    static const uint8_t zeros[65536];
    int r = fault_check(HIO_FALLOC, f, off, len);

    if (r) {
        return r;
    }
    if (write_log) {
        write_log(HIO_LOG_WRITE, f, off, NULL, len);
    }
    if (may_punch &&
        fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) == 0) {
        return 0;
    }
    if (fallocate(f->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0) {
        return 0;
    }
    while (len) {
        size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
        r = hio_pwrite(f, zeros, n, off);
        if (r) {
            return r;
        }
        off += n;
        len -= n;
    }
    return 0;
}

int
hio_data_run(struct hio_file *f, uint64_t off, uint64_t max, bool *is_data,
             uint64_t *run_len)
{
    off_t data, hole;

    data = lseek(f->fd, (off_t)off, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {          /* no data after off: a hole */
            *is_data = false;
            *run_len = max;
            return 0;
        }
        *is_data = true;               /* unsupported: assume data */
        *run_len = max;
        return 0;
    }
    if ((uint64_t)data > off) {
        *is_data = false;
        *run_len = MIN_U64((uint64_t)data - off, max);
        return 0;
    }
    hole = lseek(f->fd, (off_t)off, SEEK_HOLE);
    if (hole < 0 || (uint64_t)hole <= off) {
        *is_data = true;
        *run_len = max;
        return 0;
    }
    *is_data = true;
    *run_len = MIN_U64((uint64_t)hole - off, max);
    return 0;
}

static const char *const perm_names[] = {
    "consistent read", "write", "write unchanged", "resize",
};

/* Is byte @byte locked by another open file description? */
static int
byte_locked_by_other(int fd, off_t byte, bool *locked)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    *locked = fl.l_type != F_UNLCK;
    return 0;
}

static int
lock_byte(int fd, off_t byte)
{
    struct flock fl = {
        .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1,
    };

    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
    }
    return 0;
}

int
hio_lock(struct hio_file *f, unsigned perm, unsigned unshared,
         const char **what)
{
    unsigned i;
    int r;

    for (i = 0; i < 4; i++) {
        if ((perm & (1u << i)) && (r = lock_byte(f->fd, 100 + i)) < 0) {
            *what = perm_names[i];
            return r;
        }
        if ((unshared & (1u << i)) && (r = lock_byte(f->fd, 200 + i)) < 0) {
            *what = perm_names[i];
            return r;
        }
    }
    for (i = 0; i < 4; i++) {
        bool locked = false;

        if (perm & (1u << i)) {
            r = byte_locked_by_other(f->fd, 200 + i, &locked);
            if (r < 0) {
                return r == -EINVAL ? 0 : r;   /* no OFD locks here */
            }
            if (locked) {
                *what = perm_names[i];
                return -EBUSY;
            }
        }
        if (unshared & (1u << i)) {
            r = byte_locked_by_other(f->fd, 100 + i, &locked);
            if (r < 0) {
                return r == -EINVAL ? 0 : r;
            }
            if (locked) {
                *what = perm_names[i];
                return -EBUSY;
            }
        }
    }
    return 0;
}
