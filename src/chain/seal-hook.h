/*
 * seal-hook.h - the seal hook of the chain (seal-hook.c): what chain.c,
 * chain-map.c and create.c call on every open, read and create. The seal
 * operations above the chain use engine.h instead.
 */
#ifndef VMC_CHAIN_SEAL_HOOK_H
#define VMC_CHAIN_SEAL_HOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "vmclone.h"
#include "format/format.h"

struct vmc_image;
struct seal_state;

#define SEAL_EXT_MAGIC   0x564D4353u   /* "VMCS": root of this image */
#define SEAL_PARENT_MAGIC FORMAT_PARENT_SEAL_EXT  /* root of the parent */
#define SEAL_PARENT_EXT_LEN FORMAT_PARENT_SEAL_LEN

/* Called for every layer after its driver opened it: loads the seal if
 * the layer has one; refuses a read-write open of a sealed layer unless
 * VMC_OPEN_UNSEAL is in @flags. */
int seal_attach(struct vmc_image *img, unsigned flags, struct vmc_error *err);
void seal_free(struct seal_state *st);

/* Verify every chunk of sealed layer @img overlapping [off, off+len) that
 * was not verified yet; -EIO on mismatch. No-op for unsealed layers. */
int seal_verify(struct vmc_image *img, uint64_t off, uint64_t len);

/* If @overlay records a parent seal, its open backing file must carry
 * exactly that seal. */
int seal_check_parent(struct vmc_image *overlay, struct vmc_error *err);

/* The parent-seal extension to record in a new overlay of @backing;
 * returns 1 and fills @out if @backing is sealed, 0 if not. */
int seal_parent_ext(const struct vmc_image *backing,
                    uint8_t out[SEAL_PARENT_EXT_LEN]);

/* The same for the backing file named @backing_name (resolved against the
 * directory of @overlay_path, as the chain opener does) in format @fmt,
 * opened alone and without locks: 1 and @out filled if it is a sealed
 * template, 0 if it is not or cannot be opened. */
int seal_parent_ext_of(const char *overlay_path, const char *backing_name,
                       enum vmc_format fmt, uint8_t out[SEAL_PARENT_EXT_LEN]);

#endif /* VMC_CHAIN_SEAL_HOOK_H */
