/*
 * engine.h - the one internal header the folders above the chain (ops,
 * nbd, catalog) may include: what they need from the engine and cannot
 * get from include/. Nothing here exposes a driver or host-file struct;
 * images stay struct vmc_image (opaque) and host files are handles.
 *
 * Implemented in engine.c on top of io/, format/ and chain/, except the
 * create call (chain/create.c) and the seal calls (chain/seal-hook.c). Keep it
 * narrow: a new entry here needs a user above the chain that has no way
 * through the public API.
 */
#ifndef VMC_ENGINE_H
#define VMC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmclone.h"
#include "vmclone-seal.h"
#include "../../util/util.h"    /* leaf helpers: MIN, alignment, byte order */

/* ------------------------------------------------------- host files */

/* A host file opened through the engine's I/O layer (so that fault
 * injection sees every operation). Opaque. */
struct hio_file;

/* Open @path; @flags are open(2) flags. */
int engine_file_open(struct hio_file **out, const char *path, int flags,
                     mode_t mode);
/* Take over descriptor @fd of @path (closed by engine_file_close, also on
 * failure here). */
int engine_file_adopt_fd(struct hio_file **out, int fd, const char *path,
                         bool writable);
void engine_file_close(struct hio_file *f);
/* The descriptor of @f, for lseek(SEEK_DATA/SEEK_HOLE) only; borrowed. */
int engine_file_fd(const struct hio_file *f);
/* Exactly @len bytes; bytes past the end of the file read as zeros. */
int engine_file_pread(struct hio_file *f, void *buf, size_t len,
                      uint64_t off);
int engine_file_pwrite(struct hio_file *f, const void *buf, size_t len,
                       uint64_t off);
int engine_file_sync(struct hio_file *f);
int engine_file_truncate(struct hio_file *f, uint64_t len);
int engine_file_length(struct hio_file *f, uint64_t *len);
/* Reserve [off, off+len) (fallocate mode 0). */
int engine_file_allocate(struct hio_file *f, uint64_t off, uint64_t len);
/* Kernel copy of [off, off+len) to the same offset of @dst; -EXDEV,
 * -EOPNOTSUPP... when it cannot. */
int engine_file_copy_range(struct hio_file *src, struct hio_file *dst,
                           uint64_t off, uint64_t len);
/* Make @dst share all extents of @src (reflink). */
int engine_file_reflink(struct hio_file *dst, struct hio_file *src);
/* Start writeback of [off, off+len) (len 0: to the end); a hint. */
void engine_file_start_writeback(struct hio_file *f, uint64_t off,
                                 uint64_t len);
/* Lock @f as the only writer (QEMU-compatible OFD locks): -EBUSY if
 * another process has it open for reading consistently or writing. */
int engine_file_lock_exclusive_write(struct hio_file *f);

/* Rename @from to @to; with @noreplace, -EEXIST if @to exists. */
int engine_rename(const char *from, const char *to, bool noreplace);
/* Make the entries of directory @dir durable (fsync). */
int engine_sync_dir(const char *dir);
/* Is the file at @path open in another process that holds any QEMU image
 * lock on it (a running VM, a server)? False if it cannot be opened. */
bool engine_file_in_use(const char *path);
/* Does another process hold the write permission of the file at @path
 * (QEMU running on it, a writable server)? */
bool engine_file_write_held(const char *path);

/* --------------------------------------------------- images as files */

/* Start writeback of the whole host file of the top layer of @img. */
void engine_image_start_writeback(struct vmc_image *img);
/* Are layers @a and @b the same host file (same device and inode)? */
bool engine_layers_same_file(const struct vmc_image *a,
                             const struct vmc_image *b);

/* ------------------------------------------------------ host extents */

enum engine_extent_flags {
    ENGINE_EXT_DATA       = 1u << 0,  /* plain data at host_offset of fd */
    ENGINE_EXT_ZERO       = 1u << 1,  /* reads as zeros */
    ENGINE_EXT_COMPRESSED = 1u << 2,  /* stored compressed: not at fd */
    ENGINE_EXT_STABLE     = 1u << 3,  /* its layer is open read-only and
                                         unsealed: the bytes at fd never
                                         change while the image is open */
};

struct engine_extent {
    int fd;                /* host file of the layer, -1 if none */
    uint64_t host_offset;  /* with ENGINE_EXT_DATA */
    uint64_t length;       /* guest bytes of the run (> 0) */
    unsigned flags;        /* enum engine_extent_flags */
};

/* Where the guest run at @off (at most @len bytes) of the whole chain of
 * @img lives on the host. Borrowed descriptor: valid while @img is open. */
int engine_host_extent(struct vmc_image *img, uint64_t off, uint64_t len,
                       struct engine_extent *out);
/* Is any layer of the chain of @img sealed (reads verify digests)? */
bool engine_chain_sealed(const struct vmc_image *img);

/* ---------------------------------------- images outside host files */

/* The data path of a one-layer image whose bytes live outside host files
 * (an rbd image: src/ops/rbd-image.c). The engine calls it as it calls a
 * format driver: with the image's layer lock held, ranges inside the
 * image, 0 or a negative errno. The image has no backing chain (its
 * storage does any layering), no seal, and is presented as raw. */
struct engine_ext_ops {
    int (*read)(void *priv, void *buf, uint64_t off, size_t len);
    int (*write)(void *priv, const void *buf, uint64_t off, size_t len);
    /* read back as zeros afterwards; @may_unmap: storage may be freed */
    int (*write_zeroes)(void *priv, uint64_t off, uint64_t len,
                        bool may_unmap);
    int (*discard)(void *priv, uint64_t off, uint64_t len);
    int (*flush)(void *priv);
    /* The run at @off (0 < *@run <= @len): *@data when the storage holds
     * data for it, else it reads as zeros and holds nothing. */
    int (*block_status)(void *priv, uint64_t off, uint64_t len, bool *data,
                        uint64_t *run);
    /* Release @priv (after the last flush). */
    void (*close)(void *priv);
};

/* Make @backing (an image of its own, e.g. one of engine_image_ext_new())
 * the chain below @top, a layer opened alone (VMC_OPEN_NO_BACKING) whose
 * backing reference names it: what @top does not hold is read from
 * @backing, which @top owns from then on (vmc_image_close() closes it).
 * The sizes must match. @backing's own chain is not opened. */
int engine_image_attach_backing(struct vmc_image *top,
                                struct vmc_image *backing,
                                struct vmc_error *err);

/* A new image named @name, @size bytes, preferred I/O unit @granularity
 * (a power of two), read-write when @writable, served by @ops on @priv.
 * vmc_image_close() flushes it and calls @ops->close; so does this call
 * when it fails. */
int engine_image_ext_new(struct vmc_image **out, const char *name,
                         uint64_t size, uint64_t granularity, bool writable,
                         const struct engine_ext_ops *ops, void *priv,
                         struct vmc_error *err);

/* ------------------------------------------------------ parent seals */

/* Length of the parent-seal record a linked clone carries. */
#define ENGINE_PARENT_SEAL_LEN 40

/* The parent-seal record for a new overlay of @backing: 1 and @out filled
 * if @backing is a sealed template, 0 if not. */
int engine_parent_seal(const struct vmc_image *backing,
                       uint8_t out[ENGINE_PARENT_SEAL_LEN]);
/* vmc_image_create() recording @parent_seal (ENGINE_PARENT_SEAL_LEN
 * bytes, or NULL for none) instead of reading the backing file's. */
int engine_image_create_with_parent_seal(const char *path,
                                         const struct vmc_create_opts *o,
                                         const uint8_t *parent_seal,
                                         struct vmc_error *err);

/* --------------------------------------------------- sealed templates
 * For the seal operations (src/ops/seal.c); implemented in the seal hook
 * (src/chain/seal-hook.c), which owns the seal's file formats. */

#define ENGINE_SEAL_DIGEST_LEN 32

/* SHA-256 of @len bytes at @data. */
int engine_seal_digest(const void *data, size_t len,
                       uint8_t md[ENGINE_SEAL_DIGEST_LEN]);
/* The root digest of a seal over @n chunk digests @leaves (@chunk bytes
 * each, of @vsize guest bytes): what a seal records (rbd copies are
 * verified against it, src/ops/rbd-copy.c). */
int engine_seal_root(uint32_t chunk, uint64_t vsize, const uint8_t *leaves,
                     uint64_t n, uint8_t out[ENGINE_SEAL_DIGEST_LEN]);
/* Digest of chunk @c of the sealed top layer of @img as its driver reads
 * it, bypassing verification (@buf holds one chunk). */
int engine_seal_hash_chunk(struct vmc_image *img, uint64_t c, uint8_t *buf,
                           uint8_t md[ENGINE_SEAL_DIGEST_LEN]);
/* 1 when chunk @c (@chunk_size bytes) of @img's top layer is all read
 * from its backing file (not allocated, not zero, in the top layer) and
 * that backing file is sealed in chunks of that size: then @md is its
 * recorded digest, with nothing read (sealing a layer costs its own
 * data, not the disk's). 0 when the chunk must be read and hashed. */
int engine_seal_backing_leaf(struct vmc_image *img, uint32_t chunk_size,
                             uint64_t c, uint8_t md[ENGINE_SEAL_DIGEST_LEN]);
/* Does @md equal the sealed digest of chunk @c of the top layer? */
bool engine_seal_chunk_ok(const struct vmc_image *img, uint64_t c,
                          const uint8_t md[ENGINE_SEAL_DIGEST_LEN]);
/* Verify the chunks of the sealed top layer over [off, off+len) that were
 * not verified yet in this process; -EIO on mismatch. */
int engine_seal_verify(struct vmc_image *img, uint64_t off, uint64_t len);
/* Seal the top layer of @img (the file at @path, opened read-write and
 * flushed) with the chunk digests @leaves: write the sidecar, then (qcow2)
 * the seal extension, which is the commit point. Fills @info if given. */
int engine_seal_write(struct vmc_image *img, const char *path,
                      uint32_t chunk_size, const uint8_t *leaves,
                      struct vmc_seal_info *info, struct vmc_error *err);
/* Remove the seal extension of the top layer of @img (if its format has
 * extensions). */
int engine_seal_clear_ext(struct vmc_image *img, struct vmc_error *err);
/* Remove the sidecar of the image at @path (absent is fine) and sync its
 * directory. */
int engine_seal_remove_sidecar(const char *path, struct vmc_error *err);

#endif /* VMC_ENGINE_H */
