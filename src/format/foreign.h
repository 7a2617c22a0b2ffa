/*
 * foreign.h - what the read-only drivers of other hypervisors' formats
 * (vpc, vdi, vhdx) share: the refusal of writes, UTF-16 names and the
 * confinement of parent-file names.
 */
#ifndef VMC_FORMAT_FOREIGN_H
#define VMC_FORMAT_FOREIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/format.h"
#include "util/util.h"

/* Where a run of guest bytes reads from. */
enum foreign_src {
    FOREIGN_FILE,     /* this file, at the run's host offset */
    FOREIGN_ZERO,     /* zeros defined by this layer */
    FOREIGN_PARENT,   /* the backing chain (zeros without one) */
};

/* A driver's mapping: the source of the run at @off (at most @len bytes,
 * *run set to its length, *host for FOREIGN_FILE). */
typedef int (*foreign_run_fn)(struct vmc_image *img, uint64_t off,
                              uint64_t len, enum foreign_src *src,
                              uint64_t *host, uint64_t *run);

/* The number of bits equal to bit @first of @map from @first on (up to
 * bit @end, exclusive; @first < @end), bits numbered from the most
 * significant of each byte if @msb_first; that bit's value in *@set. */
uint64_t foreign_bit_run(const uint8_t *map, uint64_t first, uint64_t end,
                         bool msb_first, bool *set);

/* The head of every read-only driver's state (img->priv): its mapping,
 * and the two tables freed at close. */
struct foreign_state {
    foreign_run_fn map;
    void *table;
    void *bitmap;
    bool holes_read_zero;   /* block status reports file holes as zero,
                               as QEMU does for formats it maps this way */
};

/* The start of every read-only open: refuse VMC_OPEN_RDWR, get the
 * file's length into *@file_len, allocate img->priv (@state_size bytes,
 * zeroed, starting with a struct foreign_state) with @map as mapping. */
int foreign_open_begin(struct vmc_image *img, unsigned flags,
                       size_t state_size, foreign_run_fn map,
                       uint64_t *file_len, struct vmc_error *err);

/* format_ops.read, .block_status and .close over that state. */
int foreign_read(struct vmc_image *img, void *buf, uint64_t off, size_t len);
int foreign_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                         struct vmc_block_status *out);
void foreign_close(struct vmc_image *img);

/* The format_ops of a read-only driver. */
#define FOREIGN_OPS(fmt_name, fmt, open_fn, status_fn, info_fn, gran_fn) { \
        .name = fmt_name, .format = fmt, .open = open_fn,                  \
        .close = foreign_close, .read = foreign_read,                     \
        .block_status = status_fn, .get_info = info_fn,                   \
        .granularity = gran_fn,                                           \
        .write = foreign_write, .write_zeroes = foreign_write_zeroes,     \
        .discard = foreign_discard, .flush = foreign_flush,               \
        .resize = foreign_resize,                                         \
    }

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
