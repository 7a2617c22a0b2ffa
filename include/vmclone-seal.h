/*
 * vmclone-seal.h - sealed templates: a base image that is read-only and
 * carries a content digest, so that damage is detected on read instead of
 * silently breaking every linked clone.
 *
 * Sealing computes a SHA-256 per chunk of the guest view and a root digest
 * over them (a two-level hash tree). A chunk that an image with a sealed
 * backing file reads wholly from it takes that file's recorded digest
 * unread (same chunk size): sealing a layer costs its own data. The chunk digests live in a sidecar
 * file beside the image ("IMAGE.seal"); for qcow2 the root digest is also
 * recorded in a header extension (QEMU ignores and preserves unknown
 * extensions). The image file is made mode 0444 and the engine refuses to
 * open it for writing.
 *
 * On read, every chunk of a sealed layer is verified the first time it is
 * touched in a process; a mismatch fails the read with -EIO (and
 * vmc_image_last_error() says which template and offset) instead of
 * returning wrong data.
 *
 * A linked clone created over a sealed template records the template's
 * root digest; opening the clone fails if its backing file no longer
 * carries that seal (replaced, modified, or re-sealed differently).
 */
#ifndef VMCLONE_SEAL_H
#define VMCLONE_SEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vmclone.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMC_SEAL_DEFAULT_CHUNK (64u << 10)

struct vmc_seal_info {
    bool sealed;
    uint32_t chunk_size;
    uint64_t virtual_size;
    uint64_t nchunks;
    uint8_t root[32];
    char root_hex[65];
};

/**
 * Seal the image at @path (chunk_size 0 = VMC_SEAL_DEFAULT_CHUNK; a power
 * of two between 4 KiB and 16 MiB). Hashes with @threads threads (0 = 2).
 * @return 0, -EALREADY (already sealed), -EBUSY (in use), other -errno.
 */
VMC_API int vmc_image_seal(const char *path, uint32_t chunk_size,
                           unsigned threads, const struct vmc_open_opts *opts,
                           struct vmc_seal_info *info, struct vmc_error *err);

/** Remove the seal of @path (the image becomes writable again; clones
 *  made from it will refuse to open). */
VMC_API int vmc_image_unseal(const char *path, struct vmc_error *err);

/** Seal of the top layer of @img (info->sealed false if none). */
VMC_API void vmc_image_seal_info(const struct vmc_image *img,
                                 struct vmc_seal_info *info);

struct vmc_verify_result {
    uint64_t chunks;
    uint64_t corrupt;
    uint64_t repaired;
};

/** Called for every corrupt chunk found (and once more if repaired). */
typedef void (*vmc_verify_report_fn)(uint64_t offset, uint64_t len,
                                     bool repaired, void *opaque);

/**
 * Verify every chunk of the sealed image at @path with @threads threads.
 * With @repair_from, chunks that fail are rewritten from that replica,
 * which must carry the same seal (root digest) and verify itself.
 * @return 0 if the check ran (see @res), -ENOTSUP if not sealed, -EIO if
 *         the seal metadata itself is damaged, other -errno.
 */
VMC_API int vmc_image_verify(const char *path, const char *repair_from,
                             unsigned threads, struct vmc_verify_result *res,
                             vmc_verify_report_fn report, void *opaque,
                             struct vmc_error *err);

/** Deprecated: use vmc_image_last_error(). The message of the last
 *  data-path failure recorded in the chain of @img (any kind, not only
 *  seal verification), or NULL; in a buffer of the calling thread, valid
 *  until its next call. */
VMC_API const char *vmc_image_io_error(const struct vmc_image *img);

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_SEAL_H */
