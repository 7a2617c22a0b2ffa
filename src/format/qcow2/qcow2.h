/*
 * qcow2.h - internal interface of the qcow2 driver.
 *
 * WRITE ORDERING (the invariant: a crash may leak clusters, never corrupt)
 *
 * Metadata (refcount blocks, refcount table, L2 tables, L1 table, header
 * fields) is modified in memory and written back by qcow2_flush() in this
 * order, with a data sync between steps:
 *   1. refcount blocks, then the refcount table (new blocks before the
 *      table entries that point at them); if the table moved, sync and
 *      switch the header pointer;
 *   2. sync: guest data written to new clusters and every refcount
 *      increment are durable before anything references them;
 *   3. L2 tables; sync; then the L1 table (and header L1 fields);
 *   4. sync; only now are deferred refcount decrements applied (a cluster
 *      is freed only after no durable L2/L1/header references it), to be
 *      written by the next flush (a crash in between only leaks).
 * Freed clusters are therefore never reused before their unlinking is on
 * disk. Writes into clusters whose refcount is 1 (COPIED) go in place.
 */
#ifndef VMC_QCOW2_H
#define VMC_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/events.h"
#include "format/format.h"

#define QCOW2_MAGIC            0x514649FBu
/* "No offset applies" for qcow2_mark_corrupt(). */
#define QCOW2_NO_OFFSET        UINT64_MAX
/* Limits checked at open, each the one QEMU enforces (so every image QEMU
 * opens, we open), several of them caps QEMU added after CVEs on hostile
 * headers (docs/design/qcow2-engine.md, "Limits enforced at open"). */
/* 512 B .. 2 MiB clusters: the qcow2 spec's range, as in QEMU. */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
/* QEMU's L1 cap (32 MiB): bounds the L1 allocation a header can ask for
 * (CVE-2014-0143/0144 class: l1_size overflow and huge allocations). */
#define QCOW2_MAX_L1_BYTES     (32u << 20)
/* Sizes are off_t in QEMU and here: at most INT64_MAX, sector-aligned. */
#define QCOW2_MAX_SIZE         ((uint64_t)INT64_MAX & ~511ull)
/* QEMU's refcount-table cap (8 MiB): same reason as the L1 cap
 * (CVE-2014-0144, unbounded refcount_table_clusters). */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
/* Check's reference counts (4 bytes per cluster of the file) may take
 * this much memory; a larger file is refused with a clear error. */
#define QCOW2_CHECK_MAX_BYTES  (1ull << 30)
/* QEMU's QCOW_MAX_SNAPSHOTS: bounds the snapshot-table walk (CVE-2014-0144
 * class, nb_snapshots from a hostile header). */
#define QCOW2_MAX_SNAPSHOTS    65536
/* QEMU's backing-file name limit (1023 bytes, its PATH_MAX-sized buffer);
 * longer names are refused as QEMU does (CVE-2014-0144 class). */
#define QCOW2_MAX_BACKING_NAME FORMAT_MAX_BACKING_NAME

/* The on-disk header (qcow2 spec "Header"), big-endian. The code reads
 * and writes it by byte offset (be32_load(hdr + 20)...); this struct and
 * the asserts below pin those offsets and the two header lengths. */
struct qcow2_disk_header {
    uint32_t magic;                    /*   0 */
    uint32_t version;                  /*   4 */
    uint64_t backing_file_offset;      /*   8 */
    uint32_t backing_file_size;        /*  16 */
    uint32_t cluster_bits;             /*  20 */
    uint64_t size;                     /*  24 */
    uint32_t crypt_method;             /*  32 */
    uint32_t l1_size;                  /*  36 */
    uint64_t l1_table_offset;          /*  40 */
    uint64_t refcount_table_offset;    /*  48 */
    uint32_t refcount_table_clusters;  /*  56 */
    uint32_t nb_snapshots;             /*  60 */
    uint64_t snapshots_offset;         /*  64: version 2 ends at 72 */
    uint64_t incompatible_features;    /*  72 */
    uint64_t compatible_features;      /*  80 */
    uint64_t autoclear_features;       /*  88 */
    uint32_t refcount_order;           /*  96 */
    uint32_t header_length;            /* 100: version 3 ends at 104 */
    uint8_t compression_type;          /* 104 */
    uint8_t padding[7];                /* 105: header_length 112 */
} __attribute__((packed));

#define QCOW2_HDR_ASSERT(field, off)                                    \
    _Static_assert(offsetof(struct qcow2_disk_header, field) == (off),  \
                   "qcow2 header field " #field " at byte " #off)
QCOW2_HDR_ASSERT(version, 4);
QCOW2_HDR_ASSERT(backing_file_offset, 8);
QCOW2_HDR_ASSERT(backing_file_size, 16);
QCOW2_HDR_ASSERT(cluster_bits, 20);
QCOW2_HDR_ASSERT(size, 24);
QCOW2_HDR_ASSERT(crypt_method, 32);
QCOW2_HDR_ASSERT(l1_size, 36);
QCOW2_HDR_ASSERT(l1_table_offset, 40);
QCOW2_HDR_ASSERT(refcount_table_offset, 48);
QCOW2_HDR_ASSERT(refcount_table_clusters, 56);
QCOW2_HDR_ASSERT(nb_snapshots, 60);
QCOW2_HDR_ASSERT(snapshots_offset, 64);
QCOW2_HDR_ASSERT(incompatible_features, 72);
QCOW2_HDR_ASSERT(compatible_features, 80);
QCOW2_HDR_ASSERT(autoclear_features, 88);
QCOW2_HDR_ASSERT(refcount_order, 96);
QCOW2_HDR_ASSERT(header_length, 100);
QCOW2_HDR_ASSERT(compression_type, 104);
#undef QCOW2_HDR_ASSERT
_Static_assert(sizeof(struct qcow2_disk_header) == 112,
               "qcow2 header with compression type is 112 bytes");
/* A snapshot table entry's fixed part (qcow2 spec "Snapshot table"),
 * the size validate_table() is given. */
#define QCOW2_SNAPSHOT_ENTRY_MIN 40

#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN       0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS    (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW   (1ull << 1)

#define QCOW2_EXT_END           0x00000000u
#define QCOW2_EXT_BACKING_FMT   0xE2792ACAu
#define QCOW2_EXT_FEATURE_TABLE 0x6803F857u
#define QCOW2_EXT_BITMAPS       0x23852875u
#define QCOW2_EXT_CRYPTO        0x0537BE77u
#define QCOW2_EXT_DATA_FILE     0x44415441u

#define L1E_OFFSET_MASK    0x00fffffffffffe00ull
#define L1E_RESERVED_MASK  0x7f000000000001ffull
#define L2E_OFFSET_MASK    0x00fffffffffffe00ull
#define L2E_STD_RESERVED_MASK 0x3f000000000001feull
#define REFT_OFFSET_MASK   0xfffffffffffffe00ull
#define REFT_RESERVED_MASK 0x1ffull
#define QCOW_OFLAG_COPIED     (1ull << 63)
#define QCOW_OFLAG_COMPRESSED (1ull << 62)
#define QCOW_OFLAG_ZERO       (1ull << 0)

#define QCOW2_SUBCLUSTERS 32
#define QCOW2_SC_ALLOC_ALL 0x00000000ffffffffull
#define QCOW2_SC_ZERO_ALL  0xffffffff00000000ull

/* Classification of one guest (sub)cluster in this layer. */
enum qcow2_ctype {
    QC_UNALLOCATED,     /* read through to the backing file */
    QC_ZERO,            /* reads as zeros (host cluster may be kept) */
    QC_NORMAL,          /* data at host offset */
    QC_COMPRESSED,
    QC_INVALID,
};

struct qcow2_table {         /* a cached L2 table or refcount block */
    uint64_t host_offset;
    uint8_t *data;           /* one cluster, big-endian as on disk */
    bool dirty;
    bool fresh;              /* new, never written yet */
};

struct qcow2_ext {           /* an unknown header extension, preserved */
    uint32_t type;
    uint32_t len;
    uint8_t *data;
};

/* How far the running qcow2_flush() got (the steps of WRITE ORDERING
 * above); each writer of a later step asserts the earlier ones ran. */
enum qcow2_flush_step {
    QCOW2_FLUSH_IDLE,
    QCOW2_FLUSH_REFCOUNTS,    /* 1: refcount blocks and table written */
    QCOW2_FLUSH_DATA_SYNCED,  /* 2: data and increments durable */
    QCOW2_FLUSH_L2,           /* 3: L2 tables written and synced */
    QCOW2_FLUSH_UNLINKED,     /* 4: L1/header durable: frees may apply */
};

struct qcow2_pending_free {
    uint64_t offset;         /* host cluster offset */
    uint64_t count;          /* clusters */
};

struct qcow2_state {
    struct vmc_image *img;
    struct hio_file *f;

    /* header */
    unsigned version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    uint64_t incompat, compat, autoclear;
    unsigned header_length;
    unsigned compression_type;
    uint8_t *extra_header;   /* header bytes [112, header_length) kept */
    unsigned extra_header_len;
    struct qcow2_ext *exts;
    unsigned nexts;
    unsigned nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t crypt_method;

    /* geometry */
    bool ext_l2;
    unsigned l2_entry_size;  /* 8 or 16 */
    uint64_t l2_entries;     /* per table */
    uint64_t subcluster_size;
    unsigned refcount_order;
    unsigned refcount_bits;
    uint64_t refcount_max;
    uint64_t rb_entries;     /* refcount entries per block */
    unsigned csize_shift;
    uint64_t csize_mask;
    uint64_t coffset_mask;

    /* L1 */
    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t *l1;            /* host endian */
    bool l1_dirty;
    bool header_dirty;       /* l1/reftable/size fields changed */
    uint64_t l1_old_offset;  /* to free after the switch, or 0 */
    uint32_t l1_old_clusters;

    /* refcounts */
    uint64_t reftable_offset;
    uint32_t reftable_clusters;
    uint64_t reftable_entries;
    uint64_t *reftable;      /* host endian */
    bool reftable_dirty;
    uint64_t reftable_old_offset;
    uint32_t reftable_old_clusters;
    struct qcow2_table **rblocks;  /* by reftable index */
    uint64_t free_hint;      /* no free cluster below this index */
    struct qcow2_pending_free *pending;
    size_t npending, cap_pending;
    const uint32_t *reserved_refs; /* check/repair: clusters in use */
    uint64_t reserved_len;

    /* L2 cache: by L1 index */
    struct qcow2_table **l2;
    uint64_t l2_cached;
    uint64_t l2_cache_max;

    /* compressed writing */
    uint64_t cwrite_offset;  /* next free byte in the current cluster */
    uint64_t cwrite_end;

    /* decompression cache (one cluster) */
    uint64_t dcache_entry;
    uint8_t *dcache;
    uint8_t *cbuf;           /* compressed input scratch */

    /* Sorted host offsets of L2 tables and refcount blocks, for the
     * overlap check of in-place writes; rebuilt when meta_valid is false
     * (whenever an L1 or refcount table entry changes). */
    uint64_t *meta;
    size_t nmeta, meta_cap;
    bool meta_valid;

    bool sparse_file;        /* host file has holes (preallocation) */
    enum qcow2_flush_step flush_step;

    /* Set by qcow2_mark_corrupt(): the first reason and the host offset
     * of the damaged structure are kept (later ones are dropped). */
    bool corrupt;
    char corrupt_reason[160];
    uint64_t corrupt_offset; /* QCOW2_NO_OFFSET if none applies */
};

static inline struct qcow2_state *qcow2_s(const struct vmc_image *img)
{
    return img->priv;
}

/* qcow2-refcount.c */
int qcow2_refcount_get(struct qcow2_state *s, uint64_t cluster,
                       uint64_t *val);
int qcow2_refcount_set(struct qcow2_state *s, uint64_t cluster, uint64_t val);
/* Allocate @n contiguous clusters with refcount 1; returns host offset. */
int qcow2_alloc_clusters(struct qcow2_state *s, uint64_t n, uint64_t *off);
/* Drop one reference of each cluster in [off, off + n clusters) after the
 * next flush made their unlinking durable. */
int qcow2_free_clusters_deferred(struct qcow2_state *s, uint64_t off,
                                 uint64_t n);
int qcow2_refcount_flush_blocks(struct qcow2_state *s);
int qcow2_apply_pending_frees(struct qcow2_state *s);
/* Load the refcount table (or, with !load, set up an empty one). */
int qcow2_refcount_init(struct qcow2_state *s, bool load);
void qcow2_refcount_release(struct qcow2_state *s);
int qcow2_load_table(struct qcow2_state *s, uint64_t off,
                     struct qcow2_table **out);
/* Does the cluster at host @off start at or past the end of the file
 * (rounded up to a cluster, the bound of qemu-img check)? A table or an
 * in-place data cluster there was never written: a damaged pointer. */
int qcow2_past_eof(struct qcow2_state *s, uint64_t off, bool *past);

/* qcow2-l2.c */
/* The run of guest bytes at @off (at most @len, within one L2 table) that
 * shares one state (and, for data, contiguous host offsets). */
struct qcow2_mapping {
    enum qcow2_ctype type;
    uint64_t host;        /* host offset of the first byte (NORMAL/ZERO) */
    uint64_t entry;       /* raw L2 entry of the first cluster */
    uint64_t entry_offset; /* its host offset (0: no L2 table) */
    uint64_t length;      /* bytes in the run */
};
/* Host offset of entry @i of L2 table @t (for corruption reports). */
static inline uint64_t
qcow2_l2_entry_offset(const struct qcow2_state *s, const struct qcow2_table *t,
                      uint64_t i)
{
    return t->host_offset + i * s->l2_entry_size;
}
int qcow2_lookup(struct qcow2_state *s, uint64_t off, uint64_t len,
                 struct qcow2_mapping *m);
/* The L2 table for L1 index @l1_index; with @alloc a missing table is
 * created. *out is NULL when it does not exist and @alloc is false. */
int qcow2_get_l2(struct qcow2_state *s, uint64_t l1_index, bool alloc,
                 struct qcow2_table **out);
uint64_t qcow2_l2_get(const struct qcow2_state *s,
                      const struct qcow2_table *t, uint64_t i,
                      uint64_t *bitmap);
void qcow2_l2_set(struct qcow2_state *s, struct qcow2_table *t, uint64_t i,
                  uint64_t entry, uint64_t bitmap);
enum qcow2_ctype qcow2_classify(const struct qcow2_state *s, uint64_t entry,
                                uint64_t bitmap, unsigned sc);
void qcow2_compressed_range(const struct qcow2_state *s, uint64_t entry,
                            uint64_t *coffset, uint64_t *csize);
int qcow2_flush_l2(struct qcow2_state *s);
void qcow2_l2_cache_release(struct qcow2_state *s);
/* Drop the cached L2 tables (flushing first) once over the cache size. */
int qcow2_l2_cache_trim(struct qcow2_state *s);

/* qcow2-write.c */
/* -EUCLEAN (and mark corrupt, naming @what: "write", "allocation") if
 * [host, host+len) overlaps metadata: the header, the L1 table, the
 * refcount table, the snapshot table, an L2 table or a refcount block. */
int qcow2_check_overlap(struct qcow2_state *s, uint64_t host, uint64_t len,
                        const char *what);
/* Add the host offset of a new L2 table or refcount block to the index
 * the overlap check uses (an index that is full is rebuilt instead). */
void qcow2_meta_add(struct qcow2_state *s, uint64_t off);
/* Queue the release of whatever host clusters an old L2 entry held. */
int qcow2_release_entry(struct qcow2_state *s, uint64_t entry);
int qcow2_write(struct vmc_image *img, const void *buf, uint64_t off,
                size_t len, unsigned flags);
int qcow2_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                       unsigned flags);
int qcow2_discard(struct vmc_image *img, uint64_t off, uint64_t len);

/* qcow2-cluster.c */
int qcow2_read(struct vmc_image *img, void *buf, uint64_t off, size_t len);
/* Read the current guest view of [off, off+len), zeros past the end. */
int qcow2_read_view(struct qcow2_state *s, uint8_t *buf, uint64_t off,
                    size_t len);
int qcow2_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                       struct vmc_block_status *out);
int qcow2_write_compressed(struct vmc_image *img, const void *buf,
                           uint64_t off, size_t len);
/* Unallocate (and free) every cluster at or after guest offset @from. */
int qcow2_discard_tail(struct qcow2_state *s, uint64_t from);
int qcow2_make_empty(struct vmc_image *img, struct vmc_error *err);
int qcow2_preallocate(struct vmc_image *img, enum vmc_prealloc mode,
                      struct vmc_error *err);

/* qcow2-compress.c */
int qcow2_decompress(unsigned type, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t out_len);
/* Returns compressed length, or 0 if not smaller, or -errno. */
long qcow2_compress(unsigned type, const uint8_t *in, size_t in_len,
                    uint8_t *out, size_t out_cap);

/* qcow2-header.c */
/* Serialise cluster 0 into @buf (@cap bytes): header, extensions and
 * backing name; *used is the length written. -ENOSPC if it cannot fit. */
int qcow2_build_header(const struct qcow2_state *s, const char *backing_name,
                       const char *backing_fmt, uint64_t size, uint8_t *buf,
                       size_t cap, size_t *used);
int qcow2_write_header_fields(struct qcow2_state *s);
/* Mark the image corrupt (in memory, and the header bit if writable),
 * keeping the first reason and the host @offset of what is damaged
 * (QCOW2_NO_OFFSET if none), and record it as the layer's last error.
 * Returns -EUCLEAN. */
int qcow2_mark_corrupt(struct qcow2_state *s, uint64_t offset,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Refuse an operation on an image marked corrupt: records the first
 * reason again as the layer's last error; returns -EUCLEAN. */
int qcow2_corrupt_refusal(struct qcow2_state *s);
int qcow2_set_incompat(struct qcow2_state *s, uint64_t bits, bool on);
int qcow2_set_backing(struct vmc_image *img, const char *name,
                      const char *fmt, const uint8_t *parent_seal,
                      struct vmc_error *err);
int qcow2_get_ext(const struct vmc_image *img, uint32_t type, void *buf,
                  size_t cap, size_t *len);
int qcow2_set_ext(struct vmc_image *img, uint32_t type, const void *data,
                  size_t len, struct vmc_error *err);

/* qcow2-open.c */
int qcow2_open(struct vmc_image *img, unsigned flags, struct vmc_error *err);
void qcow2_close(struct vmc_image *img);

/* qcow2.c */
int qcow2_flush(struct vmc_image *img);
/* fdatasync the image file (event "flush"). */
int qcow2_sync(struct qcow2_state *s);

/* qcow2-check.c */
int qcow2_check(struct vmc_image *img, unsigned repair,
                struct vmc_check_result *res, vmc_check_report_fn report,
                void *opaque, struct vmc_error *err);

#endif /* VMC_QCOW2_H */
