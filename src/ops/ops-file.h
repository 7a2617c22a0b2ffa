/*
 * ops-file.h - host file helpers of the clone operations (ops-file.c):
 * temporary files next to a target, atomic rename into place, directory
 * fsync, and the file-level copy paths of a full clone (FICLONE reflink,
 * sparse copy_file_range). Plain syscalls: these operate on whole files
 * the engine does not have open for writing.
 */
#ifndef VMC_OPS_FILE_H
#define VMC_OPS_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmclone.h"
#include "vmclone-ops.h"

struct hio_file;

/*
 * Create an empty temporary file "<dir>/.<name>.vmc-XXXXXX" next to
 * @final, mode 0666 & ~umask. The name is returned in *@tmp_out
 * (malloc'd); the open file in *@f_out if @f_out is non-NULL
 * (otherwise it is closed).
 */
int ops_tmp_create(const char *final, char **tmp_out, struct hio_file **f_out,
                   struct vmc_error *err);

/* fsync the directory holding @path. */
int ops_fsync_parent(const char *path, struct vmc_error *err);

/*
 * Rename @tmp to @final; without @replace an existing @final is left
 * alone and -EEXIST returned. The directory is not synced.
 */
int ops_rename(const char *tmp, const char *final, bool replace,
               struct vmc_error *err);

/* Bytes allocated on the host for @path (st_blocks * 512). */
int ops_file_allocated(const char *path, uint64_t *out);

/* Is @a the same file as @b (device and inode)? false if either is
 * missing. */
bool ops_same_file(const char *a, const char *b);

/* Directory part of @path ("." if none), malloc'd; NULL on ENOMEM. */
char *ops_dirname(const char *path);

enum ops_copy_result {
    OPS_COPY_REFLINK,        /* the whole file was cloned (FICLONE) */
    OPS_COPY_RANGE,          /* data extents copied with copy_file_range */
};

/* Progress of a file copy: @fn (may be NULL) is called from the calling
 * thread after each piece, with the part of the data bytes copied so far
 * on the scale of @total (the guest size the caller reports; 0: the data
 * bytes themselves). */
struct ops_copy_progress {
    vmc_progress_fn fn;
    void *opaque;
    uint64_t total;
};

/*
 * Copy the file @src_path into the open, empty file @df: first FICLONE
 * (when @try_reflink), else copy_file_range over the data extents only
 * (SEEK_DATA/SEEK_HOLE; holes stay holes), with up to @workers threads.
 * The length is set to the source's. With @thick the whole length is
 * then allocated (fallocate), and reflink is not tried. @cp reports the
 * copy_file_range path's progress.
 * @return 0 with *@how and *@copied (bytes copied, 0 for a reflink);
 *         -EOPNOTSUPP when the kernel/filesystem cannot do either (the
 *         caller falls back to a guest-view copy; @df is truncated to 0);
 *         other -errno with a message.
 */
int ops_copy_file(const char *src_path, struct hio_file *df,
                  const char *dst_name,
                  bool try_reflink, bool thick, unsigned workers,
                  const struct ops_copy_progress *cp,
                  enum ops_copy_result *how, uint64_t *copied,
                  struct vmc_error *err);

#endif /* VMC_OPS_FILE_H */
