/*
 * view-io.h - read and write a guest view piece by piece, for the
 * operations that rewrite an image chunk by chunk (rebase, relink).
 */
#ifndef VMC_OPS_VIEW_IO_H
#define VMC_OPS_VIEW_IO_H

#include <stdint.h>

#include "vmclone.h"

/* Read @n bytes at @off of @img's guest view into @buf: zeros past its
 * end, all zeros when @img is NULL. The message of a failure reads
 * "error while reading @what'FILE' at offset N: ..." (@what is "" or ends
 * in a space, e.g. "from old backing file "). Returns 0 or -errno. */
int ops_read_view(struct vmc_image *img, uint8_t *buf, uint64_t off,
                  uint64_t n, const char *what, struct vmc_error *err);

/* Write @n bytes at @off of @img: @buf's data, or zeros when @buf is NULL
 * or all zero. The message of a failure reads "error while writing
 * @what'FILE' at offset N: ...". Returns 0 or -errno. */
int ops_write_view(struct vmc_image *img, const uint8_t *buf, uint64_t off,
                   uint64_t n, const char *what, struct vmc_error *err);

#endif /* VMC_OPS_VIEW_IO_H */
