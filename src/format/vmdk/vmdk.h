/*
 * vmdk.h - the VMDK read driver's state (VMware Virtual Disk Format 5.0):
 * a descriptor (embedded in a hosted sparse extent, or a text file) and
 * one or more extents (sparse with grain directory and tables, optionally
 * stream-optimized with compressed grains; flat; zero). Read-only: every
 * table is validated against the file before it is trusted. The writer
 * (vmdk-write.c) makes monolithicSparse and streamOptimized files.
 */
#ifndef VMC_VMDK_H
#define VMC_VMDK_H

#include <stdbool.h>
#include <stdint.h>

#include "format/format.h"

#define VMDK_SECTOR 512u
/* Longest descriptor we parse (text file or embedded). */
#define VMDK_MAX_DESC (1u << 20)
/* Largest grain (sectors): 64 MiB, far above what any tool writes. */
#define VMDK_MAX_GRAIN_SECTORS (1u << 17)
/* Most entries in one grain table (the specification's is 512). */
#define VMDK_MAX_GTES (1u << 16)
/* Grain tables cached per sparse extent (direct-mapped). */
#define VMDK_GT_CACHE 16u

/* The hosted sparse extent header (one sector, little-endian), shared by
 * the reader (vmdk-sparse.c) and the writer (vmdk-write.c). */
#define VMDK_MAGIC "KDMV"
#define VMDK_H_VERSION     4     /* u32: 1, or 3 for stream-optimized */
#define VMDK_H_FLAGS       8     /* u32, VMDK_FLAG_* */
#define VMDK_H_CAPACITY    12    /* u64, sectors */
#define VMDK_H_GRAIN       20    /* u64, sectors */
#define VMDK_H_DESC_OFF    28    /* u64, sectors */
#define VMDK_H_DESC_SIZE   36    /* u64, sectors */
#define VMDK_H_GTES        44    /* u32, entries per grain table */
#define VMDK_H_RGD_OFF     48    /* u64, sectors */
#define VMDK_H_GD_OFF      56    /* u64, sectors; VMDK_GD_AT_END */
#define VMDK_H_OVERHEAD    64    /* u64, sectors before the first grain */
#define VMDK_H_NEWLINES    73    /* '\n', ' ', '\r', '\n': transfer check */
#define VMDK_H_COMPRESS    77    /* u16, 1 = deflate */
#define VMDK_FLAG_NL_TEST    (1u << 0)
#define VMDK_FLAG_RGD        (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESSED (1u << 16)
#define VMDK_FLAG_MARKERS    (1u << 17)
#define VMDK_GD_AT_END UINT64_MAX
/* Stream-optimized markers: a grain's is {lba u64, size u32, data};
 * a metadata marker is one sector {sectors u64, 0 u32, type u32}. */
#define VMDK_MARKER_EOS    0u
#define VMDK_MARKER_GT     1u
#define VMDK_MARKER_GD     2u
#define VMDK_MARKER_FOOTER 3u
#define VMDK_GRAIN_MARKER  12u    /* bytes before a compressed grain */

enum vmdk_extent_type {
    VMDK_EXTENT_FLAT,
    VMDK_EXTENT_SPARSE,
    VMDK_EXTENT_ZERO,
};

/* One cached grain table. */
struct vmdk_gt_slot {
    uint64_t gd_index;
    bool valid;
    uint32_t *entries;
};

struct vmdk_extent {
    enum vmdk_extent_type type;
    struct hio_file *file;       /* NULL for a zero extent */
    bool own_file;               /* opened here (not img->file) */
    char *path;                  /* for messages */
    uint64_t start;              /* first guest byte */
    uint64_t length;             /* guest bytes it covers */
    uint64_t flat_offset;        /* flat: file offset of its first byte */
    uint64_t file_length;

    /* sparse */
    uint64_t capacity;           /* header capacity, bytes */
    uint64_t grain;              /* grain size, bytes */
    uint32_t gtes;               /* entries per grain table */
    uint64_t gt_cover;           /* bytes one grain table covers */
    uint32_t *gd;                /* grain directory: GT sector offsets */
    uint64_t gd_entries;
    uint64_t meta_end;           /* end of header+descriptor+GD(s), bytes */
    bool compressed;             /* deflate grains with markers */
    bool zero_grain;             /* GT entry 1 means "zeros" */
    struct vmdk_gt_slot gt_cache[VMDK_GT_CACHE];
};

/* The parsed descriptor (vmdk-desc.c). */
struct vmdk_desc_extent {
    enum vmdk_extent_type type;
    uint64_t sectors;
    uint64_t offset;             /* flat: sectors into the file */
    char *name;                  /* NULL for ZERO */
};

struct vmdk_desc {
    char *create_type;
    char *parent_hint;
    uint32_t cid, parent_cid;
    struct vmdk_desc_extent *extents;
    size_t n_extents;
};

struct vmdk_state {
    struct vmdk_extent *extents;
    size_t n_extents;
    char *create_type;
    /* The last inflated grain (stream-optimized reads come in pieces). */
    uint8_t *grain_buf;
    uint64_t grain_buf_size;
    const struct vmdk_extent *grain_ext;
    uint64_t grain_off;          /* its file offset; 0: none */
    uint8_t *comp_buf;
    uint64_t comp_cap;
    void *zs;                    /* a z_stream kept from grain to grain
                                    (vmdk_sparse_end()), or NULL */
};

/* vmdk-desc.c */
int vmdk_desc_parse(const char *text, size_t len, const char *path,
                    struct vmdk_desc *d, struct vmc_error *err);
void vmdk_desc_free(struct vmdk_desc *d);

/* vmdk-sparse.c */
/* Free what the reads of stream-optimized grains kept in @s. */
void vmdk_sparse_end(struct vmdk_state *s);
/* Parse the sparse extent header of @e->file (a footer copy too for a
 * stream-optimized one), load and check its grain directory. @budget is
 * the table memory it may take (what it took is added to *@used). If
 * @desc is non-NULL and the header embeds a descriptor, it is read into
 * *@desc (else left zeroed). */
int vmdk_sparse_open(struct vmdk_extent *e, uint64_t budget, uint64_t *used,
                     struct vmdk_desc *desc, struct vmc_error *err);
void vmdk_sparse_close(struct vmdk_extent *e);
/* Where the grain holding extent byte @off lives: *@entry is its grain
 * table entry (0 unallocated, 1 zeroed when e->zero_grain, else a sector
 * offset checked against the file). */
int vmdk_sparse_lookup(struct vmdk_extent *e, uint64_t off, uint32_t *entry);
/* Read @len bytes at extent offset @off (within one grain). */
int vmdk_sparse_read(struct vmdk_state *s, struct vmdk_extent *e, void *buf,
                     uint64_t off, size_t len, uint32_t entry);

#endif /* VMC_VMDK_H */
