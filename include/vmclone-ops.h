/*
 * vmclone-ops.h - operations on opened images: full clone (convert),
 * compare, commit, rebase, allocation map, and small helpers shared by
 * the command line.
 *
 * Everything here is built on the public API of vmclone.h only. The
 * semantics follow qemu-img 7.2 (see docs/design/clone-ops.md and
 * docs/vm-clone.1).
 *
 * Conventions are those of vmclone.h: functions return 0 or a negative
 * errno and take a `struct vmc_error *err` last (may be NULL). Images
 * passed in are borrowed; the caller opens and closes them. None of
 * these functions prints anything.
 */
#ifndef VMCLONE_OPS_H
#define VMCLONE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmclone.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Progress callback: @done of @total bytes of work are complete.
 * Called from the calling thread, with @done never decreasing; the last
 * call of a successful operation has @done == @total.
 */
typedef void (*vmc_progress_fn)(uint64_t done, uint64_t total,
                                void *opaque);

/* --------------------------------------------------------------- helpers */

/**
 * Resolve a backing file name the way a backing chain does: an absolute
 * @name is returned as is; a relative one is joined to the directory of
 * @image_path (the overlay's name as opened, not the process CWD).
 * @param[out] out  newly allocated string, freed with free().
 * @return 0 or -ENOMEM.
 */
VMC_API int vmc_backing_path_resolve(const char *image_path, const char *name,
                                     char **out);

/**
 * Number of layers in the open chain of @img (1 for an image without an
 * open backing file).
 */
VMC_API unsigned vmc_chain_length(const struct vmc_image *img);

/**
 * Find the layer of @top's open chain (not @top itself) named @name.
 * A layer matches when @name is the backing name stored in the layer
 * above it, or when @name (as given, or relative to the directory of
 * the layer above) is the same file (device and inode).
 * @param[out] out    borrowed layer.
 * @param[out] depth  its depth (1 = immediate backing); may be NULL.
 * @return 0, -ENOENT (with a message naming @name).
 */
VMC_API int vmc_chain_find(struct vmc_image *top, const char *name,
                           struct vmc_image **out, unsigned *depth,
                           struct vmc_error *err);

/**
 * Size of the backing file @name of a (new) image at @image_path, opened
 * alone (no chain) as format @fmt; used by create to size an overlay.
 * @return 0, or the -errno of vmc_image_open() with a message.
 */
VMC_API int vmc_backing_size(const char *image_path, const char *name,
                             const char *fmt, uint64_t *size,
                             struct vmc_error *err);

/* ------------------------------------------------------------------- map */

/** One extent of the allocation map, with qemu-img map's fields. */
struct vmc_map_extent {
    uint64_t start;
    uint64_t length;
    unsigned depth;         /**< layer answering (0 = top) */
    bool present;           /**< some layer defines the range */
    bool zero;              /**< reads as zeros */
    bool data;              /**< backed by data in a file */
    bool has_offset;        /**< @offset and @filename are valid */
    uint64_t offset;        /**< host offset in @filename */
    /** Borrowed filename of the layer holding the data, NULL without
     *  an offset. Valid until the chain is closed. */
    const char *filename;
};

/**
 * Status of the run at @offset (at most @len bytes) as qemu-img map
 * reports it: the chain is walked layer by layer; a range that no layer
 * defines is reported at the depth of the bottom layer, or of the layer
 * whose backing file ends before @offset, with present = false and
 * zero = true.
 * @param[out] e  the extent; e->length > 0 on success.
 * @return 0, -EINVAL (@offset beyond the end), or a block-status error.
 */
VMC_API int vmc_map_status(struct vmc_image *img, uint64_t offset, uint64_t len,
                           struct vmc_map_extent *e);

enum vmc_map_flags {
    /** Merge as the human table does: zero or non-data extents are all
     *  reported as {zero, !data} so that they coalesce. */
    VMC_MAP_HUMAN = 1 << 0,
};

/**
 * Called once per merged extent, in order. A negative return stops the
 * walk and is returned by vmc_map().
 */
typedef int (*vmc_map_fn)(const struct vmc_map_extent *e, void *opaque);

/**
 * Produce the allocation map of [@start, @start + @len) clipped to the
 * image size, merging adjacent extents whose fields are all equal (and
 * whose host offsets are contiguous in the same file). An empty range
 * yields one extent of length 0 with every flag false, as qemu-img does.
 * @param flags  enum vmc_map_flags.
 * @return 0, the callback's negative value, or -errno (with a message)
 *         if the metadata could not be read.
 */
VMC_API int vmc_map(struct vmc_image *img, uint64_t start, uint64_t len,
                    unsigned flags, vmc_map_fn fn, void *opaque,
                    struct vmc_error *err);

/* --------------------------------------------------------------- convert */

struct vmc_convert_opts {
    /** Target format and creation options. @create.size, backing_file
     *  and backing_format are filled in by vmc_convert(). With
     *  @no_create, @create.format is the format to open the target as
     *  (VMC_FMT_AUTO probes). */
    struct vmc_create_opts create;
    /** Make the target an overlay of this file (stored verbatim, relative
     *  to the target's directory). Only ranges allocated in the source's
     *  top layer are copied: the backing must hold the same data as the
     *  source's backing chain. */
    const char *backing_file;
    const char *backing_format;   /**< required with @backing_file */
    bool compress;                /**< write compressed clusters */
    /** Runs of at least this many zero bytes are not written; 0 writes
     *  everything (fully allocated target). Multiple of 512. */
    uint64_t sparse_size;
    bool no_create;               /**< the target exists (-n) */
    /** Open options for an existing target (-n) whose backing format is
     *  not recorded; may be NULL. */
    const char *target_backing_format;
    vmc_progress_fn progress;
    void *opaque;
    /** Threads copying in parallel (without compression); 0 or 1 copies
     *  in the calling thread. */
    unsigned workers;
    /** For a target format with a sequential writer (vpc, vdi, vhdx,
     *  vmdk: vmc_format_has_writer()): its options (the format is
     *  @create.format). Such a target is written front to back by one
     *  thread; -n (@no_create) and @backing_file are refused, and
     *  @compress only fits vmdk's streamOptimized subformat (whose grains
     *  are always compressed). */
    struct vmc_writer_opts writer;
};

/** Defaults: qcow2 target (vmc_create_opts_init), sparse_size 4096. */
VMC_API void vmc_convert_opts_init(struct vmc_convert_opts *o);

/**
 * Set the target of @o by format name ("raw", "qcow2", "vpc", "vdi",
 * "vhdx", "vmdk") and, for the writer formats, their options
 * ("subformat=streamOptimized,zlib_level=6": vmc_writer_opts_parse()).
 * The one way to say "this format, these options" for convert and export:
 * then call vmc_convert(src, dst, @o, err).
 * @return 0; -EINVAL (unknown format, bad option, options given to raw or
 *         qcow2, which take theirs in @o->create) with a message.
 */
VMC_API int vmc_convert_opts_set_target(struct vmc_convert_opts *o,
                                        const char *format,
                                        const char *options,
                                        struct vmc_error *err);

/**
 * Copy the guest view of @src (opened with its chain) into a new image
 * @dst (the full clone), or into the existing image @dst with @no_create.
 * Zero ranges are left unallocated in a fresh target without backing and
 * written as zeros otherwise. The target is flushed before returning.
 * @return 0; -EINVAL (bad options), -ENOTSUP (compression or backing not
 *         supported by the target format), -ENOSPC, -EIO, ... with a
 *         message naming the file and the offset that failed.
 */
VMC_API int vmc_convert(struct vmc_image *src, const char *dst,
                        const struct vmc_convert_opts *o,
                        struct vmc_error *err);

/* --------------------------------------------------------------- compare */

enum vmc_compare_status {
    VMC_COMPARE_IDENTICAL = 0,
    VMC_COMPARE_CONTENT_MISMATCH,   /**< offset: first differing sector */
    VMC_COMPARE_SIZE_MISMATCH,      /**< strict mode only */
    VMC_COMPARE_STATUS_MISMATCH,    /**< strict mode only; offset set */
};

enum vmc_compare_failure {
    VMC_COMPARE_OK = 0,
    VMC_COMPARE_FAIL_STATUS,        /**< block status failed (exit 3) */
    VMC_COMPARE_FAIL_READ,          /**< reading data failed (exit 4) */
};

struct vmc_compare_result {
    enum vmc_compare_status status;
    uint64_t offset;
    /** The sizes differ and the extra part was examined (non-strict
     *  mode); qemu-img prints "Warning: Image size mismatch!". */
    bool size_warning;
    enum vmc_compare_failure failure;   /**< set when -errno returned */
};

struct vmc_compare_opts {
    /** Also fail on size differences and on any difference in block
     *  status (allocated, zero, data) through the chains. */
    bool strict;
    vmc_progress_fn progress;
    void *opaque;
};

/**
 * Compare the guest views of @a and @b. Unallocated ranges equal zeros;
 * without @strict, images of different sizes are equal when the extra
 * part reads as zeros. Offsets are reported at 512-byte granularity.
 * @param o  may be NULL (default, non-strict).
 * @return 0 when the comparison completed (see @res), or -errno with
 *         res->failure set and a message.
 */
VMC_API int vmc_compare(struct vmc_image *a, struct vmc_image *b,
                        const struct vmc_compare_opts *o,
                        struct vmc_compare_result *res, struct vmc_error *err);

/* ---------------------------------------------------------------- commit */

struct vmc_commit_opts {
    /** Layer to commit into, found with vmc_chain_find(); NULL means the
     *  immediate backing file. */
    const char *base;
    /** Keep the top's data (don't empty it). qemu-img's -b implies it. */
    bool keep_top;
    vmc_progress_fn progress;
    void *opaque;
};

/**
 * Copy every range defined by the layers above the base into the base
 * (zeros become zeros), growing the base if the top is larger, then,
 * unless @keep_top, empty @top so it reads through again. The base is
 * reopened read-write; @top must be writable unless @keep_top.
 * Images between the base and @top are invalid afterwards.
 * @return 0, -EINVAL (no backing file), -ENOENT (base not in the chain),
 *         -EROFS, -EBUSY, -ENOSPC, -EIO ... with a message.
 */
VMC_API int vmc_commit(struct vmc_image *top, const struct vmc_commit_opts *o,
                       struct vmc_error *err);

/* ---------------------------------------------------------------- rebase */

struct vmc_rebase_opts {
    /** Only rewrite the backing reference (-u). */
    bool unsafe;
    /** Options used to open the new backing chain: flags (only
     *  VMC_OPEN_FORCE_SHARE is honoured), backing_format and max_depth.
     *  May be NULL. */
    const struct vmc_open_opts *backing_open;
    vmc_progress_fn progress;
    void *opaque;
};

/**
 * Change the backing file of @img (opened read-write with its current
 * chain, unless @unsafe) to @backing of format @backing_fmt; @backing
 * NULL or "" removes it (flatten in place). In safe mode every range not
 * allocated in @img where the old chain and the new one differ receives
 * the old content, per cluster, so that the guest view is unchanged.
 * A relative @backing is relative to @img's directory and is stored as
 * given.
 * @return 0, -EINVAL (format missing), -ENOENT (new backing not found),
 *         -ELOOP (it would include @img), -EROFS, -EIO ... with a message.
 */
VMC_API int vmc_rebase(struct vmc_image *img, const char *backing,
                       const char *backing_fmt, const struct vmc_rebase_opts *o,
                       struct vmc_error *err);

/* ----------------------------------------------------------------- clone */

/** Options of a linked clone (vmc_clone_linked()). */
struct vmc_clone_opts {
    /** Options of the new qcow2 image. Defaults (vmc_clone_opts_init()):
     *  version 3, extended L2 entries, 128 KiB clusters (4 KiB
     *  subclusters: a first 4 KiB write copies nothing from the base).
     *  @create.size 0 means the base's size; the backing fields are
     *  filled in by vmc_clone_linked(). */
    struct vmc_create_opts create;
    /** Format of the base; VMC_FMT_AUTO probes it (it is named by the
     *  user). Always recorded in the clone. */
    enum vmc_format base_format;
    /** Replace existing files instead of failing with -EEXIST. */
    bool force;
    /** Store the base's absolute path even when a relative one would do
     *  (see vmc_clone_backing_name()). */
    bool absolute;
};

/** Defaults: qcow2 v3, extended_l2, cluster_size 128 KiB, probed base. */
VMC_API void vmc_clone_opts_init(struct vmc_clone_opts *o);

/**
 * The backing name a clone at @new_path stores for @base:
 *  - the path of @base relative to the directory of @new_path when both
 *    are in the same tree: the same filesystem and a common ancestor
 *    directory other than "/" (so the pair can be moved or copied
 *    together: "../templates/base.qcow2");
 *  - otherwise (or with @absolute) the canonical absolute path of @base.
 * Symbolic links in @base are resolved, so replacing a link later does
 * not change what the clone reads. The directory of @new_path must exist.
 * @param[out] out  newly allocated, freed with free().
 * @return 0, -ENOENT (base or directory missing), -ENOMEM.
 */
VMC_API int vmc_clone_backing_name(const char *base, const char *new_path,
                                   bool absolute, char **out,
                                   struct vmc_error *err);

/**
 * Create @count linked clones (qcow2 overlays) of @base, named
 * @names[0..count-1]. The base is opened once, alone (its header and size;
 * no chain walk, no data scan). Each clone is written under a temporary
 * name in its directory, made durable (one data sync), renamed into place
 * and the directory synced: when this returns 0 every clone is durable,
 * and a crash never leaves a partial clone under a final name (at worst a
 * hidden ".NAME.vmc-XXXXXX" file). Many clones are stamped from the first
 * one's bytes and synced in parallel.
 * Existing names are refused up front (-EEXIST) unless @o->force.
 * @return 0, -EEXIST, -ENOENT (base), -EBUSY (base locked for writing),
 *         -EINVAL (a name is the base), -ENOSPC ... with a message.
 */
VMC_API int vmc_clone_linked(const char *base, const char *const *names,
                             size_t count, const struct vmc_clone_opts *o,
                             struct vmc_error *err);

/**
 * The names of @count clones made from one @pattern holding exactly one
 * "%d" (or "%0Nd"; "%%" is a literal '%'), numbered from 1.
 * @param[out] out  @count newly allocated names, freed with
 *                  vmc_clone_names_free().
 * @return 0, -EINVAL (not exactly one conversion), -ENOMEM, with a message.
 */
VMC_API int vmc_clone_names(const char *pattern, size_t count, char ***out,
                            struct vmc_error *err);

/** Free what vmc_clone_names() returned; NULL is allowed. */
VMC_API void vmc_clone_names_free(char **names, size_t count);

/** How a full clone was made. */
enum vmc_clone_method {
    VMC_CLONE_REFLINK = 1,          /**< FICLONE: extents shared */
    VMC_CLONE_COPY_FILE_RANGE,      /**< kernel copy of the data extents */
    VMC_CLONE_COPY,                 /**< guest-view copy (convert) */
};

/** "reflink", "copy_file_range" or "copy". */
VMC_API const char *vmc_clone_method_name(enum vmc_clone_method m);

struct vmc_full_clone_opts {
    /** Output format; VMC_FMT_AUTO keeps the source's format. */
    enum vmc_format format;
    /** Creation options for a guest-view copy to qcow2 (format, size and
     *  backing fields are ignored). */
    struct vmc_create_opts create;
    /** @create was customised: a file-level copy (which keeps the
     *  source's layout) is not allowed. */
    bool custom_create;
    /** Preallocate the clone (falloc) so that it never runs out of space
     *  later; excludes reflink. */
    bool thick;
    /** Replace an existing target. */
    bool force;
    /** Never use a file-level copy (reflink/copy_file_range). */
    bool no_offload;
    /** Threads for the copy; 0 = automatic (2 to 4). */
    unsigned workers;
    vmc_progress_fn progress;
    void *opaque;
};

VMC_API void vmc_full_clone_opts_init(struct vmc_full_clone_opts *o);

struct vmc_full_clone_result {
    enum vmc_clone_method method;
    uint64_t bytes_copied;          /**< 0 for a reflink */
};

/**
 * Make @dst a full (standalone) clone of the guest view of @src (opened
 * with its chain), by the fastest correct path:
 *  1. reflink (FICLONE) when @src is one standalone file of the output
 *     format (no backing file, clean, no internal snapshots) and the
 *     filesystem shares extents;
 *  2. copy_file_range of its data extents (holes kept) for such a source
 *     when reflink is not possible;
 *  3. otherwise a parallel, sparse copy of the guest view (vmc_convert()
 *     with workers), preallocated with @thick.
 * The clone is built under a temporary name, synced and renamed into
 * place; the directory is synced.
 * @return 0 (see @res), -EEXIST, -EINVAL, -ENOSPC, -EIO ... with a message.
 */
VMC_API int vmc_clone_full(struct vmc_image *src, const char *dst,
                           const struct vmc_full_clone_opts *o,
                           struct vmc_full_clone_result *res,
                           struct vmc_error *err);

/* ------------------------------------------- flatten, relink, consolidate */

/**
 * Copy everything the backing chain of @img (opened read-write with its
 * chain) provides into @img and drop the backing link: `rebase -b ""`.
 * Crash-safe: data is written only where the image does not define a
 * range yet, with the content it already reads, and the header loses its
 * backing reference last, after a flush; at every instant the image reads
 * the same.
 * @return 0 (also when there is no backing file), -EROFS, -ENOSPC, -EIO.
 */
VMC_API int vmc_flatten(struct vmc_image *img, vmc_progress_fn progress,
                        void *opaque, struct vmc_error *err);

struct vmc_relink_opts {
    /** Options of the new overlay (format, size and backing fields are
     *  ignored); vmc_relink_opts_init() sets the linked-clone defaults
     *  (extended L2, 128 KiB clusters). Differences are kept per
     *  allocation unit: a subcluster with extended L2, else a cluster. */
    struct vmc_create_opts create;
    /** Open options of the image (format; flags other than
     *  VMC_OPEN_FORCE_SHARE are ignored); may be NULL. */
    const struct vmc_open_opts *img_open;
    vmc_progress_fn progress;
    void *opaque;
};

VMC_API void vmc_relink_opts_init(struct vmc_relink_opts *o);

struct vmc_relink_result {
    uint64_t bytes_before;      /**< host bytes of the image before */
    uint64_t bytes_after;       /**< host bytes of the new overlay */
    uint64_t bytes_written;     /**< guest bytes that differ (kept) */
};

/**
 * Turn @img_path (a full image, or any image) into an overlay of
 * @template (stored as given, relative to @img_path's directory, format
 * @template_fmt, which is required) that keeps only the allocation units
 * whose content differs from the template's; units where the image reads
 * zeros and the template does not become zero units. The guest view is
 * unchanged. The overlay is built in a temporary file next to the image,
 * synced, and renamed over it (the directory is synced): a crash leaves
 * either the old image or the new one.
 * @return 0, -EINVAL (image larger than the template, template is the
 *         image), -ELOOP (the template's chain contains the image),
 *         -EBUSY, -ENOSPC, -EIO ... with a message.
 */
VMC_API int vmc_relink(const char *img_path, const char *template,
                       const char *template_fmt,
                       const struct vmc_relink_opts *o,
                       struct vmc_relink_result *res, struct vmc_error *err);

enum vmc_consolidate_method {
    VMC_CONSOLIDATE_NONE = 0,       /**< nothing to do */
    VMC_CONSOLIDATE_COMMIT,         /**< commit down into the lowest */
    VMC_CONSOLIDATE_PULL,           /**< pull up into the highest */
    VMC_CONSOLIDATE_NEW_LAYER,      /**< write a new layer, rename */
};

VMC_API const char *vmc_consolidate_method_name(enum vmc_consolidate_method m);

struct vmc_consolidate_opts {
    /** The layer to keep below the merged one (found with
     *  vmc_chain_find()); NULL keeps the bottom layer. */
    const char *keep;
    /** Force a method; NONE chooses by the bytes to move. */
    enum vmc_consolidate_method method;
    /** Other images to treat as possible users of the layers. */
    const char *const *users;
    size_t nusers;
    /** Don't scan the directories of the chain for other users. */
    bool no_scan;
    /** Name of the new layer (NEW_LAYER), NULL = "<L1>.merged". */
    const char *new_layer;
    vmc_progress_fn progress;
    void *opaque;
};

struct vmc_consolidate_result {
    enum vmc_consolidate_method method;
    unsigned layers_merged;     /**< intermediate layers collapsed */
    uint64_t bytes_commit;      /**< data bytes commit-down would copy */
    uint64_t bytes_pull;        /**< data bytes pull-up would copy */
    uint64_t bytes_moved;       /**< bytes copied or zeroed */
    char merged[4096];          /**< the layer now below @top */
};

/**
 * Collapse the layers between @top (opened read-write with its chain)
 * and the kept layer into one, leaving the guest view of @top unchanged:
 *  - COMMIT: copy what the upper intermediate layers define into the
 *    lowest one, then point @top at it;
 *  - PULL: copy what the lower intermediate layers define into the
 *    highest one (which already reads it), then point that one at the
 *    kept layer;
 *  - NEW_LAYER: write a new overlay of the kept layer holding what the
 *    intermediate layers define, then point @top at it.
 * A layer is never written while another image uses it: users are found
 * in @o->users and (unless @o->no_scan) among the files of the chain's
 * directories whose backing file resolves to the layer; a layer locked by
 * another process cannot be reopened for writing (-EBUSY). Automatic
 * choice: the fewest bytes to move among the allowed methods.
 * Layers no longer used by @top are left in place.
 * @return 0 (see @res), -EBUSY (with a message naming the user), -ENOENT,
 *         -ENOSPC, -EIO ...
 */
VMC_API int vmc_consolidate(struct vmc_image *top,
                            const struct vmc_consolidate_opts *o,
                            struct vmc_consolidate_result *res,
                            struct vmc_error *err);

/* -------------------------------------------------------------------- du */

struct vmc_du {
    uint64_t virtual_size;
    uint64_t disk_size;         /**< host bytes allocated to this file */
    uint64_t unique;            /**< guest bytes with data in this layer */
    uint64_t zero;              /**< guest bytes this layer defines as 0 */
    uint64_t shared;            /**< guest bytes read from lower layers */
    uint64_t flatten;           /**< bytes flatten would add: @shared
                                 *   rounded up to this layer's clusters */
    unsigned depth;             /**< layers in the chain */
};

/**
 * Space accounting of @img (opened with its chain) by block status.
 * @return 0 or -errno with a message.
 */
VMC_API int vmc_du(struct vmc_image *img, struct vmc_du *out,
                   struct vmc_error *err);

/* ------------------------------------------------------------- scratch */

/**
 * Throwaway overlays (ephemeral runs): a fresh directory
 * @base/ephemeral.XXXXXX (0700; @base is made if missing), locked with
 * flock() for as long as its descriptor is open in this process or a
 * child that inherits it (vmc_scratch_lock_fd()). A directory whose lock
 * can be taken belongs to a dead run: vmc_scratch_sweep() removes it.
 */
struct vmc_scratch;

VMC_API int vmc_scratch_new(struct vmc_scratch **out, const char *base,
                            struct vmc_error *err);
/**
 * A new qcow2 overlay in the directory whose backing file is @backing
 * (stored as its absolute name, with @backing_format).
 * @param[out] path_out  its name, freed with free().
 */
VMC_API int vmc_scratch_overlay(struct vmc_scratch *s, const char *backing,
                                enum vmc_format backing_format,
                                char **path_out, struct vmc_error *err);
/**
 * A new qcow2 overlay in the directory over rbd image @spec: sized as the
 * image, its backing reference QEMU's name of it (raw). Our chain never
 * opens an "rbd:" backing by name: open it with vmc_scratch_open_rbd().
 * @param[out] path_out  its name, freed with free().
 */
VMC_API int vmc_scratch_overlay_rbd(struct vmc_scratch *s, const char *spec,
                                    char **path_out, struct vmc_error *err);
/**
 * Open @overlay (made by vmc_scratch_overlay_rbd() over @spec; @flags
 * VMC_OPEN_RDWR or 0) with rbd image @spec below it, opened read-only
 * through librbd (vmc_rbd_image_open(): in use while open, refused while
 * another client has it open). Close with vmc_image_close().
 */
VMC_API int vmc_scratch_open_rbd(struct vmc_image **out, const char *overlay,
                                 const char *spec, unsigned flags,
                                 struct vmc_error *err);
/** The locked descriptor (close-on-exec; clear that in a child that
 *  must keep the overlays alive). */
VMC_API int vmc_scratch_lock_fd(const struct vmc_scratch *s);
/** Remove the overlays and the directory, release the lock; NULL is
 *  fine. (Files already open stay readable until closed.) */
VMC_API void vmc_scratch_free(struct vmc_scratch *s);
/**
 * Remove what dead runs left in @base: each ephemeral.* directory whose
 * lock can be taken loses its overlay-N.qcow2 files and, once empty, is
 * removed. Nothing else is touched. A missing @base is fine.
 * @param[out] removed  directories removed (may be NULL).
 */
VMC_API int vmc_scratch_sweep(const char *base, unsigned *removed,
                              struct vmc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_OPS_H */
