/*
 * qcow2-refcount.c - refcount table and blocks, cluster allocation and
 * deferred freeing (qcow2 spec "Host cluster management").
 *
 * Refcount blocks are cached by refcount-table index and written back by
 * qcow2_refcount_flush_blocks(), which runs first in every flush (see the
 * ordering notes in qcow2.h). New refcount blocks are placed in free
 * clusters and account for themselves; when the table is too small it is
 * moved to a larger run of clusters, switched in the header only once the
 * new table and its blocks are written.
 *
 * Decrements are never applied immediately: qcow2_free_clusters_deferred()
 * queues them and qcow2_apply_pending_frees() applies them after the flush
 * that made the unlinking durable, so a freed cluster cannot be reused
 * while an on-disk table still points at it.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

int
qcow2_load_table(struct qcow2_state *s, uint64_t off,
                 struct qcow2_table **out)
{
    struct qcow2_table *t;
    int r;

    t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    t->data = malloc(s->cluster_size);
    if (!t->data) {
        free(t);
        return -ENOMEM;
    }
    t->host_offset = off;
    if (off) {
        r = hio_pread(s->f, t->data, s->cluster_size, off);
        if (r < 0) {
            free(t->data);
            free(t);
            return r;
        }
    } else {
        memset(t->data, 0, s->cluster_size);
    }
    *out = t;
    return 0;
}

int
qcow2_past_eof(struct qcow2_state *s, uint64_t off, bool *past)
{
    uint64_t flen;
    int r = hio_length(s->f, &flen);

    if (r < 0) {
        return r;
    }
    *past = off >= align_up(flen, s->cluster_size);
    return 0;
}

static void
table_free(struct qcow2_table *t)
{
    if (t) {
        free(t->data);
        free(t);
    }
}

int
qcow2_refcount_init(struct qcow2_state *s, bool load)
{
    uint64_t n = load ? (uint64_t)s->reftable_clusters * s->cluster_size / 8
                      : 0;
    uint8_t *buf;
    uint64_t i;
    int r;

    s->reftable_entries = n;
    s->reftable = calloc(n ? n : 1, sizeof(uint64_t));
    s->rblocks = calloc(n ? n : 1, sizeof(*s->rblocks));
    if (!s->reftable || !s->rblocks) {
        return -ENOMEM;
    }
    if (!n) {
        return 0;
    }
    buf = malloc(n * 8);
    if (!buf) {
        return -ENOMEM;
    }
    r = hio_pread(s->f, buf, n * 8, s->reftable_offset);
    if (r == 0) {
        for (i = 0; i < n; i++) {
            s->reftable[i] = be64_load(buf + i * 8);
        }
    }
    free(buf);
    return r;
}

void
qcow2_refcount_release(struct qcow2_state *s)
{
    uint64_t i;

    if (s->rblocks) {
        for (i = 0; i < s->reftable_entries; i++) {
            table_free(s->rblocks[i]);
        }
    }
    free(s->rblocks);
    free(s->reftable);
    free(s->pending);
    s->rblocks = NULL;
    s->reftable = NULL;
    s->pending = NULL;
}

/* Entry @i of a refcount block (any width 1..64 bits). */
static uint64_t
rb_get(const struct qcow2_state *s, const uint8_t *block, uint64_t i)
{
    unsigned bits = s->refcount_bits;

    switch (bits) {
    case 64: return be64_load(block + i * 8);
    case 32: return be32_load(block + i * 4);
    case 16: return be16_load(block + i * 2);
    case 8: return block[i];
    default: {
        /* Sub-byte widths: least significant bits of each byte first. */
        uint64_t bitpos = i * bits;
        return (block[bitpos / 8] >> (bitpos % 8)) & ((1u << bits) - 1);
    }
    }
}

static void
rb_set(const struct qcow2_state *s, uint8_t *block, uint64_t i, uint64_t v)
{
    unsigned bits = s->refcount_bits;

    switch (bits) {
    case 64: be64_store(block + i * 8, v); break;
    case 32: be32_store(block + i * 4, (uint32_t)v); break;
    case 16: be16_store(block + i * 2, (uint16_t)v); break;
    case 8: block[i] = (uint8_t)v; break;
    default: {
        uint64_t bitpos = i * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bitpos % 8));
        block[bitpos / 8] = (uint8_t)((block[bitpos / 8] & ~mask) |
                                      ((v << (bitpos % 8)) & mask));
        break;
    }
    }
}

/* Load the refcount block for table index @rt (NULL if unallocated). */
static int
get_block(struct qcow2_state *s, uint64_t rt, struct qcow2_table **out)
{
    uint64_t off;
    bool past;
    int r;

    *out = NULL;
    if (rt >= s->reftable_entries) {
        return 0;
    }
    if (s->rblocks[rt]) {
        *out = s->rblocks[rt];
        return 0;
    }
    off = s->reftable[rt] & REFT_OFFSET_MASK;
    if (!off) {
        return 0;
    }
    if (off & (s->cluster_size - 1)) {
        return qcow2_mark_corrupt(s, off, "unaligned refcount block offset "
                                  "0x%" PRIx64 " in refcount table entry "
                                  "%" PRIu64, off, rt);
    }
    r = qcow2_past_eof(s, off, &past);
    if (r == 0 && past) {
        r = qcow2_mark_corrupt(s, off, "refcount block offset 0x%" PRIx64
                               " (refcount table entry %" PRIu64 ") lies "
                               "past the end of the file", off, rt);
    }
    if (r == 0) {
        r = fmt_event(FMT_EV_REFBLOCK_LOAD);
    }
    if (r < 0) {
        return r;
    }
    r = qcow2_load_table(s, off, &s->rblocks[rt]);
    if (r < 0) {
        return r;
    }
    *out = s->rblocks[rt];
    return 0;
}

int
qcow2_refcount_get(struct qcow2_state *s, uint64_t cluster, uint64_t *val)
{
    struct qcow2_table *b;
    int r = get_block(s, cluster / s->rb_entries, &b);

    if (r < 0) {
        return r;
    }
    *val = b ? rb_get(s, b->data, cluster % s->rb_entries) : 0;
    return 0;
}

/* Is @cluster free for allocation? */
static int
cluster_is_free(struct qcow2_state *s, uint64_t cluster, bool *is_free)
{
    uint64_t v;
    int r = qcow2_refcount_get(s, cluster, &v);

    if (r < 0) {
        return r;
    }
    *is_free = v == 0 &&
               !(s->reserved_refs && cluster < s->reserved_len &&
                 s->reserved_refs[cluster]);
    return 0;
}

/* First run of @n free clusters at or after the free hint. */
static int
find_free_run(struct qcow2_state *s, uint64_t n, uint64_t *start)
{
    uint64_t c = s->free_hint, run = 0;
    bool first = true;
    int r;

    for (;; c++) {
        bool is_free;

        if (c >= (1ull << (56 - s->cluster_bits))) {
            return -ENOSPC;   /* host offsets are limited to 56 bits */
        }
        r = cluster_is_free(s, c, &is_free);
        if (r < 0) {
            return r;
        }
        if (!is_free) {
            run = 0;
            continue;
        }
        if (first) {
            s->free_hint = c;
            first = false;
        }
        if (++run == n) {
            *start = c + 1 - n;
            return 0;
        }
    }
}

static int ensure_block(struct qcow2_state *s, uint64_t rt);

/* Grow the in-memory refcount table to at least @need entries and move it
 * to a new run of clusters; the header switch happens at flush. */
static int
grow_reftable(struct qcow2_state *s, uint64_t need)
{
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t entries = MAX(need + 1, s->reftable_entries * 2);
    uint64_t clusters = DIV_ROUND_UP(entries, per_cluster);
    uint64_t *nt;
    struct qcow2_table **nb;
    uint64_t off;
    int r;

    entries = clusters * per_cluster;
    if (clusters * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
        return -EFBIG;
    }
    nt = calloc(entries, sizeof(uint64_t));
    nb = calloc(entries, sizeof(*nb));
    if (!nt || !nb) {
        free(nt);
        free(nb);
        return -ENOMEM;
    }
    memcpy(nt, s->reftable, s->reftable_entries * sizeof(uint64_t));
    memcpy(nb, s->rblocks, s->reftable_entries * sizeof(*nb));
    free(s->reftable);
    free(s->rblocks);
    s->reftable = nt;
    s->rblocks = nb;
    s->reftable_entries = entries;
    /* Now place the new table; allocation may add blocks to it. */
    r = qcow2_alloc_clusters(s, clusters, &off);
    if (r < 0) {
        return r;
    }
    if (!s->reftable_old_offset) {
        s->reftable_old_offset = s->reftable_offset;
        s->reftable_old_clusters = s->reftable_clusters;
    } else {
        /* Moved twice before a flush: the intermediate copy was never
         * referenced by the header, free it with the next flush. */
        r = qcow2_free_clusters_deferred(s, s->reftable_offset,
                                         s->reftable_clusters);
        if (r < 0) {
            return r;
        }
    }
    s->reftable_offset = off;
    s->reftable_clusters = (uint32_t)clusters;
    s->reftable_dirty = true;
    return 0;
}

/* Make sure refcount block @rt exists (allocating it if needed). */
static int
ensure_block(struct qcow2_state *s, uint64_t rt)
{
    struct qcow2_table *b;
    int r;

    for (;;) {
        uint64_t c, brt;
        struct qcow2_table *nb;

        if (rt >= s->reftable_entries) {
            r = grow_reftable(s, rt);
            if (r < 0) {
                return r;
            }
            continue;
        }
        r = get_block(s, rt, &b);
        if (r < 0 || b) {
            return r;
        }
        r = fmt_event(FMT_EV_REFBLOCK_ALLOC);
        if (r < 0) {
            return r;
        }
        r = find_free_run(s, 1, &c);
        if (r == 0) {
            /* The refcounts may lie (see qcow2_alloc_clusters()). */
            r = qcow2_check_overlap(s, c << s->cluster_bits, s->cluster_size,
                                    "refcount block allocation");
        }
        if (r < 0) {
            return r;
        }
        brt = c / s->rb_entries;
        if (brt != rt) {
            struct qcow2_table *cb;
            r = brt >= s->reftable_entries ? 0 : get_block(s, brt, &cb);
            if (r < 0) {
                return r;
            }
            if (brt >= s->reftable_entries || !cb) {
                r = ensure_block(s, brt);
                if (r < 0) {
                    return r;
                }
                continue;   /* c may be taken now: look again */
            }
            rb_set(s, cb->data, c % s->rb_entries, 1);
            cb->dirty = true;
        }
        r = qcow2_load_table(s, 0, &nb);
        if (r < 0) {
            return r;
        }
        nb->host_offset = c << s->cluster_bits;
        nb->dirty = true;
        nb->fresh = true;
        if (brt == rt) {
            rb_set(s, nb->data, c % s->rb_entries, 1);   /* describes itself */
        }
        s->rblocks[rt] = nb;
        s->reftable[rt] = nb->host_offset;
        qcow2_meta_add(s, nb->host_offset);
        s->reftable_dirty = true;
        return 0;
    }
}

int
qcow2_refcount_set(struct qcow2_state *s, uint64_t cluster, uint64_t val)
{
    uint64_t rt = cluster / s->rb_entries;
    struct qcow2_table *b;
    int r;

    if (val > s->refcount_max) {
        return -ERANGE;
    }
    r = ensure_block(s, rt);
    if (r < 0) {
        return r;
    }
    b = s->rblocks[rt];
    rb_set(s, b->data, cluster % s->rb_entries, val);
    b->dirty = true;
    if (val == 0 && cluster < s->free_hint) {
        s->free_hint = cluster;
    }
    return 0;
}

int
qcow2_alloc_clusters(struct qcow2_state *s, uint64_t n, uint64_t *off)
{
    uint64_t start, i;
    int r = fmt_event(FMT_EV_CLUSTER_ALLOC);

    if (r < 0) {
        return r;
    }
    for (;;) {
        bool still_free = true;

        r = find_free_run(s, n, &start);
        if (r < 0) {
            return r;
        }
        /* Make the blocks exist first: creating one may take a cluster of
         * the run we found, in which case we look again. */
        for (i = start / s->rb_entries; i <= (start + n - 1) / s->rb_entries;
             i++) {
            r = ensure_block(s, i);
            if (r < 0) {
                return r;
            }
        }
        for (i = 0; i < n && still_free; i++) {
            r = cluster_is_free(s, start + i, &still_free);
            if (r < 0) {
                return r;
            }
        }
        if (still_free) {
            break;
        }
    }
    /* Free by the refcounts but holding metadata: the refcounts of a
     * damaged image lie. Refuse (and mark it corrupt) rather than let the
     * caller overwrite the header or a table, as QEMU does. */
    r = qcow2_check_overlap(s, start << s->cluster_bits,
                            n << s->cluster_bits, "cluster allocation");
    if (r < 0) {
        return r;
    }
    for (i = 0; i < n; i++) {
        r = qcow2_refcount_set(s, start + i, 1);
        if (r < 0) {
            return r;
        }
    }
    if (s->free_hint == start) {
        s->free_hint = start + n;
    }
    *off = start << s->cluster_bits;
    return 0;
}

int
qcow2_free_clusters_deferred(struct qcow2_state *s, uint64_t off, uint64_t n)
{
    if (!n) {
        return 0;
    }
    if (s->npending == s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending * 2 : 64;
        struct qcow2_pending_free *p = realloc(s->pending, cap * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        s->pending = p;
        s->cap_pending = cap;
    }
    s->pending[s->npending].offset = off;
    s->pending[s->npending].count = n;
    s->npending++;
    return 0;
}

int
qcow2_apply_pending_frees(struct qcow2_state *s)
{
    size_t i;
    int r = fmt_event(FMT_EV_CLUSTER_FREE);

    assert(s->flush_step == QCOW2_FLUSH_UNLINKED);
    if (r < 0) {
        return r;   /* still pending: the next flush applies them */
    }
    for (i = 0; i < s->npending && r == 0; i++) {
        uint64_t c = s->pending[i].offset >> s->cluster_bits;
        uint64_t k;

        for (k = 0; k < s->pending[i].count && r == 0; k++) {
            uint64_t v;
            r = qcow2_refcount_get(s, c + k, &v);
            if (r == 0 && v == 0) {
                r = qcow2_mark_corrupt(s, (c + k) << s->cluster_bits,
                                       "freeing a free cluster");
            }
            if (r == 0) {
                r = qcow2_refcount_set(s, c + k, v - 1);
            }
        }
    }
    s->npending = 0;
    return r;
}

static int
write_reftable(struct qcow2_state *s)
{
    size_t n = (size_t)s->reftable_entries * 8;
    uint8_t *buf = malloc(n);
    uint64_t i;
    int r;

    if (!buf) {
        return -ENOMEM;
    }
    r = fmt_event(FMT_EV_REFBLOCK_ALLOC_WRITE_TABLE);
    if (r < 0) {
        free(buf);
        return r;
    }
    for (i = 0; i < s->reftable_entries; i++) {
        be64_store(buf + i * 8, s->reftable[i]);
    }
    r = hio_pwrite(s->f, buf, n, s->reftable_offset);
    free(buf);
    return r;
}

int
qcow2_refcount_flush_blocks(struct qcow2_state *s)
{
    uint64_t i;
    int r;

    for (i = 0; i < s->reftable_entries; i++) {
        struct qcow2_table *b = s->rblocks[i];
        if (b && b->dirty) {
            r = fmt_event(b->fresh ? FMT_EV_REFBLOCK_ALLOC_WRITE
                                   : FMT_EV_REFBLOCK_UPDATE);
            if (r == 0) {
                r = hio_pwrite(s->f, b->data, s->cluster_size,
                               b->host_offset);
            }
            if (r < 0) {
                return r;
            }
            b->dirty = false;
            b->fresh = false;
        }
    }
    if (!s->reftable_dirty) {
        return 0;
    }
    if (s->reftable_old_offset) {
        /* Moved: the blocks and the new table must be durable before the
         * header points at the table. */
        uint8_t hdr[12];

        r = write_reftable(s);
        if (r == 0) {
            r = qcow2_sync(s);
        }
        if (r == 0) {
            r = fmt_event(FMT_EV_REFBLOCK_ALLOC_SWITCH_TABLE);
        }
        if (r < 0) {
            return r;
        }
        be64_store(hdr, s->reftable_offset);
        be32_store(hdr + 8, s->reftable_clusters);
        r = hio_pwrite(s->f, hdr, 12, 48);
        if (r == 0) {
            r = qcow2_sync(s);
        }
        if (r < 0) {
            return r;
        }
        r = qcow2_free_clusters_deferred(s, s->reftable_old_offset,
                                         s->reftable_old_clusters);
        s->reftable_old_offset = 0;
        if (r < 0) {
            return r;
        }
    } else {
        /* New blocks were written above; entries may now point at them.
         * A crash before the sync leaves blocks unreferenced: a leak. */
        r = qcow2_sync(s);
        if (r == 0) {
            r = write_reftable(s);
        }
        if (r < 0) {
            return r;
        }
    }
    s->reftable_dirty = false;
    return 0;
}
