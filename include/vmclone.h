/*
 * vmclone.h - public API of libvmclone.
 *
 * libvmclone opens disk images (qcow2, raw) together with their backing
 * chains, reads and writes them with QEMU-compatible copy-on-write
 * semantics, and implements the operations built on top (create, convert,
 * compare, commit, rebase, check).
 *
 * Conventions:
 *  - Fallible functions return 0 on success or a negative errno.
 *  - Control-path functions take a `struct vmc_error *err` last (may be
 *    NULL) that receives one human-readable line on failure.
 *  - Data-path functions (read/write/zero/discard/flush/block_status)
 *    return -errno only.
 *  - Objects returned through `**out` are owned by the caller.
 *  - All data-path functions on one image are thread-safe.
 */
#ifndef VMCLONE_H
#define VMCLONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Marks a declaration as part of libvmclone's exported API. The library
 * is built with -fvisibility=hidden, so a function without it is internal
 * (scripts/check-exports.sh keeps the two lists equal). Every public
 * header includes this one.
 */
#if defined(__GNUC__) || defined(__clang__)
#define VMC_API __attribute__((visibility("default")))
#else
#define VMC_API
#endif

/* ---------------------------------------------------------------- errors */

/** One error message; filled by the control path on failure. */
struct vmc_error {
    int code;           /**< negative errno, 0 if none */
    char msg[1024];     /**< one line, no trailing newline */
};

/** Record an error (if @err is non-NULL) and return @code. */
VMC_API int vmc_error_set(struct vmc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Prefix an existing message with context ("ctx: old message"). */
VMC_API void vmc_error_prepend(struct vmc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- images */

enum vmc_format {
    VMC_FMT_AUTO = 0,   /**< probe (only for images named by the user) */
    VMC_FMT_RAW,
    VMC_FMT_QCOW2,
    VMC_FMT_VPC,        /**< VHD (Virtual PC), read-only */
    VMC_FMT_VDI,        /**< VirtualBox, read-only */
    VMC_FMT_VHDX,       /**< Hyper-V, read-only */
    VMC_FMT_VMDK,       /**< VMware, read-only (the last: names are looked up
                             up to it) */
};

/** Parse "raw"/"qcow2"/"vpc"/"vdi"/"vhdx"/"vmdk"; returns VMC_FMT_AUTO if
 *  unknown. */
VMC_API enum vmc_format vmc_format_from_name(const char *name);
VMC_API const char *vmc_format_name(enum vmc_format fmt);

enum vmc_open_flags {
    VMC_OPEN_RDWR        = 1 << 0, /**< open the top layer read-write */
    VMC_OPEN_NO_BACKING  = 1 << 1, /**< do not open the backing chain */
    VMC_OPEN_FORCE_SHARE = 1 << 2, /**< take no locks (like qemu-img -U) */
    VMC_OPEN_CHECK       = 1 << 3, /**< relaxed open for check/repair */
    VMC_OPEN_ALLOW_SNAPSHOT_WRITE = 1 << 4, /**< reserved */
    VMC_OPEN_UNSEAL      = 1 << 5, /**< open a sealed template read-write:
                                        only for sealing/unsealing */
    /** Accept block devices as backing files (refused otherwise). A
     *  FIFO, socket, character device or directory is refused as any
     *  layer, without blocking; the top layer may be a block device. */
    VMC_OPEN_BACKING_BLOCKDEV = 1 << 6,
};

/** Default cap on backing chain depth. */
#define VMC_DEFAULT_MAX_DEPTH 256
/** Default cap on the memory the mapping tables of a whole chain take
 *  (qcow2: each layer's L1 table and its L2 cache index). QEMU caps each
 *  L1 at 32 MiB but not their sum over a deep chain. */
#define VMC_DEFAULT_MAX_TABLE_MEMORY (512ull << 20)

struct vmc_open_opts {
    enum vmc_format format;          /**< format of the top image */
    unsigned flags;                  /**< enum vmc_open_flags */
    /** Format to assume for a backing file whose format is not recorded
     *  in its overlay; NULL means such a chain is refused. */
    const char *backing_format;
    unsigned max_depth;              /**< 0 = VMC_DEFAULT_MAX_DEPTH */
    /** Bytes of mapping tables the whole chain may take; past it the
     *  open is refused (-ENOMEM, naming the layer).
     *  0 = VMC_DEFAULT_MAX_TABLE_MEMORY. */
    uint64_t max_table_memory;
};

struct vmc_image;

/**
 * Open @path with its whole backing chain.
 * Backing files are opened read-only with shared locks; their format is
 * taken from the overlay's header (never probed).
 * @return 0, -ENOENT, -EACCES, -EBUSY (locked by another process),
 *         -ENOTSUP (unsupported feature), -EUCLEAN (corrupt/invalid image),
 *         -ELOOP (backing loop or chain too deep), -EROFS.
 */
VMC_API int vmc_image_open(struct vmc_image **out, const char *path,
                           const struct vmc_open_opts *opts,
                           struct vmc_error *err);

/** Flush and close the image and its backing chain; NULL is allowed.
 *  Returns the first error met while flushing (the image is closed
 *  regardless). */
VMC_API int vmc_image_close(struct vmc_image *img);

/** Guest-visible size in bytes. */
VMC_API uint64_t vmc_image_size(const struct vmc_image *img);
VMC_API enum vmc_format vmc_image_format(const struct vmc_image *img);
/** The container format the bytes of the top layer's file name, as
 *  qemu-img names it ("qcow2", "vmdk", "vpc", "vhdx", "luks"...), whether
 *  or not it was opened as that format; NULL when they name none (raw
 *  data). Static string. */
VMC_API const char *vmc_image_content_format(const struct vmc_image *img);
/** Borrowed; the name as it was opened (with a resolved directory). */
VMC_API const char *vmc_image_filename(const struct vmc_image *img);
/** Borrowed; NULL if the image has no backing file open. */
VMC_API struct vmc_image *vmc_image_backing(const struct vmc_image *img);
VMC_API bool vmc_image_is_writable(const struct vmc_image *img);

/** Read @len bytes at @offset of the guest view (through the chain). */
VMC_API int vmc_image_read(struct vmc_image *img, void *buf, uint64_t offset,
                           size_t len);

enum vmc_write_flags {
    VMC_WRITE_FUA       = 1 << 0, /**< durable before returning */
    VMC_WRITE_MAY_UNMAP = 1 << 1, /**< write_zeroes may free clusters */
};

VMC_API int vmc_image_write(struct vmc_image *img, const void *buf,
                            uint64_t offset, size_t len, unsigned flags);
/** Make the range read as zeros (never exposes backing data). */
VMC_API int vmc_image_write_zeroes(struct vmc_image *img, uint64_t offset,
                                   uint64_t len, unsigned flags);
/** Advisory: the range may be freed; afterwards it reads as zeros in
 *  images that can express it (never as backing data). */
VMC_API int vmc_image_discard(struct vmc_image *img, uint64_t offset,
                              uint64_t len);
/** Make all completed writes durable. */
VMC_API int vmc_image_flush(struct vmc_image *img);

/**
 * The last failure of the data path (read, write, write-zeroes, discard,
 * flush) recorded in the chain of @img: a layer found corrupt (its first
 * reason and the offset of the damaged structure), a sealed template that
 * fails verification, or an I/O error, whichever came last.
 * @param[out] err  if non-NULL: code (negative errno) and message, both
 *                  0/"" when nothing failed yet.
 * @return the negative errno of that failure, 0 if none.
 * Thread-safe: may be called while other threads use @img.
 */
VMC_API int vmc_image_last_error(const struct vmc_image *img,
                                 struct vmc_error *err);
/** Grow (or shrink, for raw) the guest size. */
VMC_API int vmc_image_resize(struct vmc_image *img, uint64_t new_size,
                             struct vmc_error *err);

enum vmc_bs_flags {
    VMC_BS_ALLOCATED = 1 << 0, /**< the layer (or chain) defines this range */
    VMC_BS_ZERO      = 1 << 1, /**< reads as zeros */
    VMC_BS_DATA      = 1 << 2, /**< backed by data in a file */
    VMC_BS_OFFSET    = 1 << 3, /**< host_offset is valid */
    VMC_BS_COMPRESSED = 1 << 4,
};

struct vmc_block_status {
    uint64_t length;        /**< length of the run starting at offset */
    unsigned flags;         /**< enum vmc_bs_flags */
    unsigned depth;         /**< layer that defines it (0 = top) */
    uint64_t host_offset;   /**< valid with VMC_BS_OFFSET */
    const struct vmc_image *layer; /**< layer that defines it, or NULL */
};

/**
 * Status of the run starting at @offset (at most @len bytes).
 * With @whole_chain the run is resolved through the backing chain and
 * VMC_BS_ALLOCATED means "some layer defines it" (qemu-img map's
 * "present"); without, only this layer is asked.
 */
VMC_API int vmc_image_block_status(struct vmc_image *img, uint64_t offset,
                                   uint64_t len, bool whole_chain,
                                   struct vmc_block_status *out);

/* ---------------------------------------------------------------- create */

enum vmc_prealloc {
    VMC_PREALLOC_OFF = 0,
    VMC_PREALLOC_METADATA,
    VMC_PREALLOC_FALLOC,
    VMC_PREALLOC_FULL,
};

enum vmc_compression {
    VMC_COMPRESSION_ZLIB = 0,
    VMC_COMPRESSION_ZSTD = 1,
};

struct vmc_create_opts {
    enum vmc_format format;      /**< VMC_FMT_QCOW2 or VMC_FMT_RAW */
    uint64_t size;               /**< 0 = the backing file's size */
    const char *backing_file;    /**< stored verbatim; NULL for none */
    enum vmc_format backing_format; /**< required with backing_file */
    bool backing_unsafe;         /**< don't open the backing file (-u) */
    unsigned cluster_size;       /**< 0 = 65536 */
    unsigned compat;             /**< 2 (0.10) or 3 (1.1); 0 = 3 */
    unsigned refcount_bits;      /**< 0 = 16 */
    bool extended_l2;
    enum vmc_compression compression;
    enum vmc_prealloc prealloc;
};

/** Set defaults in @o (qcow2, 64 KiB clusters, v3, 16-bit refcounts). */
VMC_API void vmc_create_opts_init(struct vmc_create_opts *o);

/** Create a new image at @path (an existing file is truncated). */
VMC_API int vmc_image_create(const char *path, const struct vmc_create_opts *o,
                             struct vmc_error *err);

/* -------------------------------------------------------------- writers */

/*
 * Sequential image writers: lay out a new image of another hypervisor's
 * format (vpc, vdi, vhdx, vmdk) front to back, as convert and export do.
 * Data is written in increasing offsets; a range never written stays
 * unallocated (it reads as zeros). The layout (headers, tables, footers)
 * is completed by vmc_writer_finish().
 */
struct vmc_writer;

#define VMC_WRITER_SUBFORMAT_MAX 32

struct vmc_writer_opts {
    enum vmc_format format;      /**< VMC_FMT_VPC, _VDI, _VHDX or _VMDK */
    /** "" for the format's default; vpc: dynamic|fixed, vdi:
     *  dynamic|static, vhdx: dynamic|fixed, vmdk:
     *  monolithicSparse|streamOptimized. */
    char subformat[VMC_WRITER_SUBFORMAT_MAX];
    uint32_t block_size;         /**< vpc/vdi/vhdx block; 0 = default */
    bool force_size;             /**< vpc: exact size, no CHS rounding */
    int zlib_level;              /**< vmdk streamOptimized: 0-9 (0 stores
                                      grains uncompressed in deflate
                                      framing); -1 = zlib's default */
};

/** Defaults: no format, default subformat and block size, level -1. */
VMC_API void vmc_writer_opts_init(struct vmc_writer_opts *o);
/** Does @fmt have a sequential writer? */
VMC_API bool vmc_format_has_writer(enum vmc_format fmt);
/** Apply "key=value[,key=value]" (subformat, block_size, force_size,
 *  zlib_level) to @o, whose format is set. -EINVAL with a message on an
 *  unknown key or a bad value. */
VMC_API int vmc_writer_opts_parse(struct vmc_writer_opts *o,
                                  const char *list, struct vmc_error *err);
/** Create @path (truncated if it exists) for a guest of @size bytes
 *  (rounded up as the format needs: sectors, VHD geometry). Sizes the
 *  format cannot hold are refused with -EFBIG and a message. */
VMC_API int vmc_writer_new(struct vmc_writer **out, const char *path,
                           uint64_t size, const struct vmc_writer_opts *o,
                           struct vmc_error *err);
/** The guest size of the image being written (after rounding). */
VMC_API uint64_t vmc_writer_size(const struct vmc_writer *w);
/** Write @len bytes at @off: @off must not be below the end of the
 *  previous write. Returns 0 or -errno (-EINVAL for an offset going
 *  back or past the end, -EFBIG when the format's file is full). */
VMC_API int vmc_writer_write(struct vmc_writer *w, const void *buf,
                             uint64_t off, size_t len);
/** Write the metadata, sync the file and free @w (also on failure). */
VMC_API int vmc_writer_finish(struct vmc_writer *w, struct vmc_error *err);
/** Free @w without finishing (the file is left incomplete). NULL ok. */
VMC_API void vmc_writer_free(struct vmc_writer *w);

/* ---------------------------------------------------------------- info */

struct vmc_image_info {
    enum vmc_format format;
    uint64_t virtual_size;
    uint64_t actual_size;        /**< bytes allocated on the host */
    uint64_t file_length;
    unsigned cluster_size;       /**< 0 for raw */
    unsigned qcow2_version;      /**< 2 or 3; 0 for raw */
    unsigned refcount_bits;
    bool extended_l2;
    bool lazy_refcounts;
    bool dirty;
    bool corrupt;
    enum vmc_compression compression;
    unsigned nb_snapshots;
    const char *backing_file;    /**< borrowed, as stored; NULL if none */
    const char *backing_path;    /**< borrowed, resolved path */
    const char *backing_format;  /**< borrowed, as recorded; NULL if none */
    /** Borrowed; the kind of image within its format (VMDK: the create
     *  type, "monolithicSparse"...), NULL if the format has none. */
    const char *subformat;
};

VMC_API void vmc_image_get_info(const struct vmc_image *img,
                                struct vmc_image_info *info);

/* ---------------------------------------------------------------- check */

enum vmc_check_repair {
    VMC_REPAIR_NONE  = 0,
    VMC_REPAIR_LEAKS = 1 << 0,
    VMC_REPAIR_ERRORS = 1 << 1,
};

struct vmc_check_result {
    uint64_t corruptions;
    uint64_t leaks;
    uint64_t check_errors;
    uint64_t corruptions_fixed;
    uint64_t leaks_fixed;
    uint64_t image_end_offset;
    uint64_t total_clusters;
    uint64_t allocated_clusters;
    uint64_t fragmented_clusters;
    uint64_t compressed_clusters;
};

/** Called by check for each problem found (one line, no newline). */
typedef void (*vmc_check_report_fn)(const char *line, void *opaque);

/**
 * Check the consistency of the top layer of @img (which must have been
 * opened with VMC_OPEN_CHECK, and VMC_OPEN_RDWR if @repair is non-zero).
 * @return 0 if the check completed (see @res), -ENOTSUP for formats
 *         that cannot be checked, other -errno if it could not complete.
 */
VMC_API int vmc_image_check(struct vmc_image *img, unsigned repair,
                            struct vmc_check_result *res,
                            vmc_check_report_fn report, void *opaque,
                            struct vmc_error *err);

/* ---------------------------------------------------------------- misc */

/** Parse a size with an optional suffix (k, M, G, T, P, E; 1024-based;
 *  "b"/"B" ignored). Returns 0 or -EINVAL. */
VMC_API int vmc_parse_size(const char *s, uint64_t *out);

/** Library version string. */
VMC_API const char *vmc_version(void);

/* ---------------------------------------------------------------- layers */

/** Cluster size of a qcow2 layer; a preferred I/O unit (4096) for raw. */
VMC_API uint64_t vmc_image_cluster_size(const struct vmc_image *img);

/**
 * Rewrite the backing reference of @img (top layer only; no data is
 * copied: this is `rebase -u`). @name NULL or "" removes the backing
 * link; otherwise @fmt ("qcow2"/"raw") is required. The new name is
 * stored verbatim; the currently open backing chain is left as it is.
 * @return 0, -EROFS, -EINVAL, -ENOSPC (does not fit in the header).
 */
VMC_API int vmc_image_set_backing(struct vmc_image *img, const char *name,
                                  const char *fmt, struct vmc_error *err);

/**
 * Make the top layer define nothing (every cluster reads through to the
 * backing file again), freeing its clusters. Used by commit.
 */
VMC_API int vmc_image_make_empty(struct vmc_image *img, struct vmc_error *err);

/**
 * Write one whole cluster compressed (qcow2 targets, for convert -c).
 * @offset must be cluster aligned; @len is the cluster size, or less for
 * the last cluster of the image. Falls back to a normal write when the
 * data does not compress. Only valid on a cluster that is unallocated.
 * @return 0, -ENOTSUP (format cannot compress), -EINVAL.
 */
VMC_API int vmc_image_write_compressed(struct vmc_image *img, const void *buf,
                                       uint64_t offset, size_t len);

/**
 * Reopen layer @layer (a backing layer of an open chain, e.g. the base
 * for commit) read-write, taking write locks. The chain stays linked.
 * @return 0, -EBUSY (locked elsewhere), -EROFS, -ENOTSUP.
 */
VMC_API int vmc_image_reopen_rw(struct vmc_image *layer, struct vmc_error *err);


#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_H */
