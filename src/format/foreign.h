/*
 * foreign.h - what the read-only drivers of other hypervisors' formats
 * (vpc, vdi, vhdx) share: the refusal of writes, little-endian loads,
 * UTF-16 names and the confinement of parent-file names.
 */
#ifndef VMC_FORMAT_FOREIGN_H
#define VMC_FORMAT_FOREIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/format.h"
#include "util/util.h"

static inline uint16_t le16_load(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t le32_load(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static inline uint64_t le64_load(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)le32_load(b) | (uint64_t)le32_load(b + 4) << 32;
}

/* Refuse a read-write open of a read-only format (0 when read-only). */
int foreign_refuse_rdwr(struct vmc_image *img, unsigned flags,
                        struct vmc_error *err);

/* Data-path stubs for the format_ops of a read-only driver. */
int foreign_write(struct vmc_image *img, const void *buf, uint64_t off,
                  size_t len, unsigned flags);
int foreign_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                         unsigned flags);
int foreign_discard(struct vmc_image *img, uint64_t off, uint64_t len);
int foreign_flush(struct vmc_image *img);
int foreign_resize(struct vmc_image *img, uint64_t new_size,
                   struct vmc_error *err);

/* Does [off, off+len) lie inside a file of @file_len bytes? */
bool foreign_in_file(uint64_t off, uint64_t len, uint64_t file_len);

/* Convert @n bytes of UTF-16 (@little_endian or big) to UTF-8 in a new
 * string, stopping at a NUL; NULL on invalid UTF-16 or no memory. */
char *foreign_utf16_to_utf8(const uint8_t *in, size_t n, bool little_endian);

/* Check a parent-file name read from image @img (Windows separators
 * already turned into '/'): a relative name under the image's
 * directory, without "..", without a drive letter, not empty, at most
 * FORMAT_MAX_BACKING_NAME bytes. A leading "./" is dropped. On success
 * sets img->backing_name (taking @name) and img->backing_fmt to @fmt;
 * on failure frees @name and returns -EPERM/-EUCLEAN with a message. */
int foreign_set_parent(struct vmc_image *img, char *name, const char *fmt,
                       struct vmc_error *err);

#endif /* VMC_FORMAT_FOREIGN_H */
