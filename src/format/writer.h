/*
 * writer.h - the sequential image writers (vmc_writer_*, vmclone.h): the
 * core in writer.c walks the guest in allocation blocks and calls one
 * format's writer_ops; the formats' layouts live next to their readers
 * (vpc/vpc-write.c, vdi/vdi-write.c, vhdx/vhdx-write.c,
 * vmdk/vmdk-write.c) and share their on-disk definitions.
 *
 * A block is touched once: the core asks the format for its place in the
 * file (alloc) before the first byte lands in it, or, for a buffered
 * format (stream-optimized VMDK), hands it the whole block once the writes
 * have moved past it (put_block). Blocks are visited in increasing order.
 */
#ifndef VMC_FORMAT_WRITER_H
#define VMC_FORMAT_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmclone.h"
#include "io/hostio.h"

struct vmc_writer;

struct writer_ops {
    enum vmc_format format;
    /* Check the options and w->size (rounding it as the format needs),
     * set w->block and w->buffered, allocate w->priv. */
    int (*begin)(struct vmc_writer *w, struct vmc_error *err);
    /* Direct formats: the file offset of block @b's first byte. */
    int (*alloc)(struct vmc_writer *w, uint64_t b, uint64_t *host);
    /* Buffered formats: block @b's bytes (zero-filled past the writes). */
    int (*put_block)(struct vmc_writer *w, uint64_t b, const uint8_t *buf);
    /* Write the headers, tables and footers. */
    int (*finish)(struct vmc_writer *w, struct vmc_error *err);
    /* Free w->priv. */
    void (*release)(struct vmc_writer *w);
};

struct vmc_writer {
    const struct writer_ops *ops;
    struct vmc_writer_opts o;
    struct hio_file *file;
    char *path;
    uint64_t size;          /* guest size */
    uint64_t block;         /* allocation unit, bytes */
    bool buffered;          /* put_block instead of alloc */
    uint64_t pos;           /* end of the last write */
    uint64_t cur;           /* current block + 1; 0: none yet */
    uint64_t cur_host;      /* direct: its file offset */
    uint8_t *buf;           /* buffered: its bytes */
    void *priv;
};

extern const struct writer_ops vpc_writer_ops;
extern const struct writer_ops vdi_writer_ops;
extern const struct writer_ops vhdx_writer_ops;
extern const struct writer_ops vmdk_writer_ops;

/* Is w->o.subformat @name (or empty, when @name is the default)? */
bool writer_subformat_is(const struct vmc_writer *w, const char *name,
                         bool is_default);
/* Refuse a subformat none of the format's names matched. */
int writer_bad_subformat(const struct vmc_writer *w, const char *names,
                         struct vmc_error *err);
/* pwrite @len bytes at @off, with a message naming the file. */
int writer_pwrite(struct vmc_writer *w, const void *buf, size_t len,
                  uint64_t off, struct vmc_error *err);
/* A random 16-byte identifier (UUID version 4 layout). */
void writer_random_id(uint8_t id[16]);

#endif /* VMC_FORMAT_WRITER_H */
