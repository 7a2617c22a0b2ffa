/*
 * create.h - image creation with a parent seal chosen by the caller (the
 * clone operations). Temporary home until the engine header exists.
 */
#ifndef VMC_CHAIN_CREATE_H
#define VMC_CHAIN_CREATE_H

#include <stdint.h>

#include "vmclone.h"

/* vmc_image_create() with the parent-seal record given by the caller
 * (@parent_seal, FORMAT_PARENT_SEAL_LEN bytes, or NULL for none) instead
 * of read from the backing file. */
int image_create_with_parent_seal(const char *path,
                                  const struct vmc_create_opts *o,
                                  const uint8_t *parent_seal,
                                  struct vmc_error *err);

#endif /* VMC_CHAIN_CREATE_H */
