/*
 * engine.c - the engine header's functions (see engine.h), on top of the
 * I/O layer, the drivers' image object and the seal hook. Most are thin:
 * their point is what they leave out (no struct of io/ or format/ leaks
 * above the chain).
 */
#include <errno.h>
#include <fcntl.h>

#include "chain/engine/engine.h"
#include "format/format.h"
#include "io/hostio.h"
#include "chain/seal-hook.h"

/* ------------------------------------------------------- host files */

int
engine_file_open(struct hio_file **out, const char *path, int flags,
                 mode_t mode)
{
    return hio_open(out, path, flags, mode);
}

int
engine_file_adopt_fd(struct hio_file **out, int fd, const char *path,
                     bool writable)
{
    return hio_adopt_fd(out, fd, path, writable);
}

void
engine_file_close(struct hio_file *f)
{
    hio_close(f);
}

int
engine_file_fd(const struct hio_file *f)
{
    return f->fd;
}

int
engine_file_pread(struct hio_file *f, void *buf, size_t len, uint64_t off)
{
    return hio_pread(f, buf, len, off);
}

int
engine_file_pwrite(struct hio_file *f, const void *buf, size_t len,
                   uint64_t off)
{
    return hio_pwrite(f, buf, len, off);
}

int
engine_file_sync(struct hio_file *f)
{
    return hio_sync(f);
}

int
engine_file_truncate(struct hio_file *f, uint64_t len)
{
    return hio_truncate(f, len);
}

int
engine_file_length(struct hio_file *f, uint64_t *len)
{
    return hio_length(f, len);
}

int
engine_file_allocate(struct hio_file *f, uint64_t off, uint64_t len)
{
    return hio_allocate(f, off, len);
}

int
engine_file_copy_range(struct hio_file *src, struct hio_file *dst,
                       uint64_t off, uint64_t len)
{
    return hio_copy_range(src, dst, off, len);
}

int
engine_file_reflink(struct hio_file *dst, struct hio_file *src)
{
    return hio_reflink(dst, src);
}

void
engine_file_start_writeback(struct hio_file *f, uint64_t off, uint64_t len)
{
    hio_start_writeback(f, off, len);
}

int
engine_file_lock_exclusive_write(struct hio_file *f)
{
    const char *what = "";

    return hio_lock(f, HIO_PERM_CONSISTENT_READ | HIO_PERM_WRITE,
                    HIO_PERM_WRITE | HIO_PERM_RESIZE, &what);
}

int
engine_rename(const char *from, const char *to, bool noreplace)
{
    return hio_rename(from, to, noreplace);
}

int
engine_sync_dir(const char *dir)
{
    return hio_sync_dir(dir);
}

/* Does another process hold one of the permission bytes @perms of the
 * file at @path? */
static bool
file_perm_held(const char *path, unsigned perms)
{
    struct hio_file *f = NULL;
    const char *what = NULL;
    bool busy;

    if (hio_open(&f, path, O_RDONLY, 0) < 0) {
        return false;
    }
    busy = hio_lock(f, 0, perms, &what) == -EBUSY;
    hio_close(f);
    return busy;
}

bool
engine_file_in_use(const char *path)
{
    return file_perm_held(path, HIO_PERM_CONSISTENT_READ | HIO_PERM_WRITE |
                                HIO_PERM_WRITE_UNCHANGED | HIO_PERM_RESIZE);
}

bool
engine_file_write_held(const char *path)
{
    return file_perm_held(path, HIO_PERM_WRITE);
}

/* --------------------------------------------------- images as files */

void
engine_image_start_writeback(struct vmc_image *img)
{
    if (img->file) {
        hio_start_writeback(img->file, 0, 0);
    }
}

bool
engine_layers_same_file(const struct vmc_image *a, const struct vmc_image *b)
{
    return a == b ||
           (a->file && b->file && a->file->dev == b->file->dev &&
            a->file->ino == b->file->ino);
}

/* ------------------------------------------------------ host extents */

int
engine_host_extent(struct vmc_image *img, uint64_t off, uint64_t len,
                   struct engine_extent *out)
{
    const unsigned at_host = VMC_BS_DATA | VMC_BS_OFFSET;
    const struct vmc_image *l;
    struct vmc_block_status bs;
    int r = vmc_image_block_status(img, off, len, true, &bs);

    if (r < 0) {
        return r;
    }
    if (bs.length == 0) {
        return -EIO;
    }
    l = bs.layer;
    out->fd = l && l->file ? l->file->fd : -1;
    out->host_offset = bs.host_offset;
    out->length = MIN(bs.length, len);
    out->flags = 0;
    if (bs.flags & VMC_BS_ZERO) {
        out->flags |= ENGINE_EXT_ZERO;
    }
    if (bs.flags & VMC_BS_COMPRESSED) {
        out->flags |= ENGINE_EXT_COMPRESSED;
    }
    if ((bs.flags & at_host) == at_host &&
        !(bs.flags & (VMC_BS_ZERO | VMC_BS_COMPRESSED)) && out->fd >= 0) {
        out->flags |= ENGINE_EXT_DATA;
    }
    if (l && !l->writable && !l->seal && l->file) {
        out->flags |= ENGINE_EXT_STABLE;
    }
    return 0;
}

bool
engine_chain_sealed(const struct vmc_image *img)
{
    for (; img; img = img->backing) {
        if (img->seal) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------ parent seals */

_Static_assert(ENGINE_PARENT_SEAL_LEN == SEAL_PARENT_EXT_LEN,
               "engine.h and seal.h agree on the parent-seal record");

int
engine_parent_seal(const struct vmc_image *backing,
                   uint8_t out[ENGINE_PARENT_SEAL_LEN])
{
    return seal_parent_ext(backing, out);
}
