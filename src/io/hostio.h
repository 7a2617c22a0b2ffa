/*
 * hostio.h - the only layer that touches host file descriptors.
 *
 * Every pread/pwrite/fsync/fallocate/copy_file_range of the engine goes
 * through here so that tests can inject failures (ENOSPC, EIO) or simulate
 * a crash at the Nth operation, either with hio_set_fault_hook() or with
 * the VMCLONE_FAULT environment variable:
 *
 *   VMCLONE_FAULT="OP:N[+]:ERR[,...]"
 *     OP   pread | pwrite | sync | falloc | truncate | rename | any
 *          (a copy_file_range or reflink counts as a pwrite of the
 *          target; a directory sync as a sync; rename is a rename)
 *     N    the Nth call of OP in this process fails (N+ : and every later one)
 *     ERR  an errno name (EIO, ENOSPC, ...) or "crash" (_exit(99) before
 *          the call is performed: what is in the page cache survives, what
 *          was not written yet is lost)
 */
#ifndef VMC_HOSTIO_H
#define VMC_HOSTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum hio_op {
    HIO_PREAD,
    HIO_PWRITE,
    HIO_SYNC,
    HIO_FALLOC,
    HIO_TRUNCATE,
    HIO_RENAME,
    HIO_OP_COUNT,
};

struct hio_file {
    int fd;
    bool writable;
    char *path;          /* as opened */
    uint64_t dev, ino;   /* identity, for loop detection */
    int sync_error;      /* first failed hio_sync() (-errno), or 0 */
};

/* Returns 0 to let the operation run, or a negative errno to fail it. */
typedef int (*hio_fault_fn)(enum hio_op op, const struct hio_file *f,
                            uint64_t offset, uint64_t len);
void hio_set_fault_hook(hio_fault_fn fn);

/* Test-only write log (simulated power loss, reliability test 4): once
 * set, @fn is called after every successful pwrite (with its data), zero
 * range (@data NULL: zeros), sync and truncate (@off: the new length) of
 * any file. NULL turns it off; off, it costs one pointer test. */
enum hio_log_kind { HIO_LOG_WRITE, HIO_LOG_SYNC, HIO_LOG_TRUNCATE };
typedef void (*hio_log_fn)(enum hio_log_kind kind, const struct hio_file *f,
                           uint64_t off, const void *data, uint64_t len);
void hio_set_write_log(hio_log_fn fn);

/* Open @path; @flags are open(2) flags (O_RDONLY/O_RDWR/O_CREAT...). */
int hio_open(struct hio_file **out, const char *path, int flags, mode_t mode);
/* Open the image file @path (@flags O_RDONLY or O_RDWR) without ever
 * blocking: a FIFO, socket, character device or directory is refused,
 * and a block device unless @allow_block, with -EINVAL and *@kind naming
 * what it is ("a FIFO"...; a directory gives -EISDIR as hio_open). */
int hio_open_image(struct hio_file **out, const char *path, int flags,
                   bool allow_block, const char **kind);
/* Take over the open descriptor @fd of @path (closed by hio_close, also
 * on failure here). */
int hio_adopt_fd(struct hio_file **out, int fd, const char *path,
                 bool writable);
void hio_close(struct hio_file *f);

/* Read exactly @len bytes; bytes past end of file read as zeros. */
int hio_pread(struct hio_file *f, void *buf, size_t len, uint64_t off);
/* Write exactly @len bytes. */
int hio_pwrite(struct hio_file *f, const void *buf, size_t len, uint64_t off);
/* fdatasync. A failure is remembered (hio_sync_failed()): once the
 * kernel reported a lost write-back, a later sync that succeeds proves
 * nothing about the pages it dropped, so the layers above treat the file
 * as failed until it is reopened. */
int hio_sync(struct hio_file *f);
/* The first failed hio_sync() of @f (-errno), or 0. */
int hio_sync_failed(const struct hio_file *f);
int hio_truncate(struct hio_file *f, uint64_t len);
int hio_length(struct hio_file *f, uint64_t *len);
int hio_allocated_bytes(struct hio_file *f, uint64_t *bytes);
/* Reserve space (mode 0) or zero a range (punch hole, falling back to
 * zero-range, falling back to writing zeros). */
int hio_allocate(struct hio_file *f, uint64_t off, uint64_t len);
int hio_zero_range(struct hio_file *f, uint64_t off, uint64_t len,
                   bool may_punch);
/* Find the data/hole run starting at @off (SEEK_DATA/SEEK_HOLE); sets
 * *is_data and *run_len. Falls back to "all data" if unsupported. */
int hio_data_run(struct hio_file *f, uint64_t off, uint64_t max,
                 bool *is_data, uint64_t *run_len);

/* Copy [off, off+len) of @src to the same offset of @dst in the kernel
 * (copy_file_range); -EXDEV/-EOPNOTSUPP/-EINVAL... when it cannot. */
int hio_copy_range(struct hio_file *src, struct hio_file *dst, uint64_t off,
                   uint64_t len);
/* Start writing back the dirty pages of [off, off+len) without waiting
 * (sync_file_range WRITE), so that a later hio_sync() has less to wait
 * for. A hint: errors are ignored. */
void hio_start_writeback(struct hio_file *f, uint64_t off, uint64_t len);
/* Make @dst share all of @src's extents (FICLONE reflink). */
int hio_reflink(struct hio_file *dst, struct hio_file *src);

/* Rename @from to @to; with @noreplace, -EEXIST if @to exists. */
int hio_rename(const char *from, const char *to, bool noreplace);
/* Make the entries of directory @dir durable (fsync). */
int hio_sync_dir(const char *dir);

/* QEMU-compatible OFD locks (file-posix: byte 100+perm = permission held,
 * byte 200+perm = permission not shared). */
enum hio_perm {
    HIO_PERM_CONSISTENT_READ = 1 << 0,
    HIO_PERM_WRITE           = 1 << 1,
    HIO_PERM_WRITE_UNCHANGED = 1 << 2,
    HIO_PERM_RESIZE          = 1 << 3,
};
/* Take locks for permissions @perm held and @unshared not shared; returns
 * -EBUSY if another open file description conflicts (the name of the
 * conflicting permission is stored in *what). */
int hio_lock(struct hio_file *f, unsigned perm, unsigned unshared,
             const char **what);

#endif /* VMC_HOSTIO_H */
