/*
 * qcow2-l2.c - L2 tables: entry access and classification, the L2 table
 * cache (by L1 index, written back by qcow2_flush_l2() in the order of
 * qcow2.h), and the lookup of a guest run through L1/L2.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

/* ----------------------------------------------------------- L2 tables */

uint64_t
qcow2_l2_get(const struct qcow2_state *s, const struct qcow2_table *t,
             uint64_t i, uint64_t *bitmap)
{
    const uint8_t *p = t->data + i * s->l2_entry_size;

    *bitmap = s->ext_l2 ? be64_load(p + 8) : 0;
    return be64_load(p);
}

void
qcow2_l2_set(struct qcow2_state *s, struct qcow2_table *t, uint64_t i,
             uint64_t entry, uint64_t bitmap)
{
    uint8_t *p = t->data + i * s->l2_entry_size;

    be64_store(p, entry);
    if (s->ext_l2) {
        be64_store(p + 8, bitmap);
    }
    t->dirty = true;
}

enum qcow2_ctype
qcow2_classify(const struct qcow2_state *s, uint64_t entry, uint64_t bitmap,
               unsigned sc)
{
    uint64_t off = entry & L2E_OFFSET_MASK;

    if (entry & QCOW_OFLAG_COMPRESSED) {
        return QC_COMPRESSED;
    }
    if (!s->ext_l2) {
        if (entry & QCOW_OFLAG_ZERO) {
            return QC_ZERO;
        }
        return off ? QC_NORMAL : QC_UNALLOCATED;
    }
    /* Bit 0 of a standard descriptor means nothing with extended L2
     * entries (the bitmap says what reads as zeros): ignored, as QEMU
     * does (its iotest 271). */
    if ((bitmap >> 32) & bitmap) {
        return QC_INVALID;   /* a subcluster both allocated and zero */
    }
    if (bitmap >> (32 + sc) & 1) {
        return QC_ZERO;
    }
    if (bitmap >> sc & 1) {
        return off ? QC_NORMAL : QC_INVALID;
    }
    return QC_UNALLOCATED;
}

void
qcow2_compressed_range(const struct qcow2_state *s, uint64_t entry,
                       uint64_t *coffset, uint64_t *csize)
{
    uint64_t nb_sectors;

    *coffset = entry & s->coffset_mask;
    nb_sectors = ((entry >> s->csize_shift) & s->csize_mask) + 1;
    *csize = nb_sectors * 512 - (*coffset & 511);
}

/* Drop every cached L2 table (after a flush if any is dirty). */
static int
shrink_l2_cache(struct qcow2_state *s)
{
    uint32_t i;
    int r;

    for (i = 0; i < s->l1_size; i++) {
        if (s->l2[i] && s->l2[i]->dirty) {
            r = qcow2_flush(s->img);
            if (r < 0) {
                return r;
            }
            break;
        }
    }
    qcow2_l2_cache_release(s);
    return 0;
}

int
qcow2_l2_cache_trim(struct qcow2_state *s)
{
    return s->l2_cached > s->l2_cache_max ? shrink_l2_cache(s) : 0;
}

void
qcow2_l2_cache_release(struct qcow2_state *s)
{
    uint64_t n = 0;
    uint32_t i;

    if (!s->l2) {
        return;
    }
    for (i = 0; i < s->l1_size; i++) {
        if (s->l2[i]) {
            free(s->l2[i]->data);
            free(s->l2[i]);
            s->l2[i] = NULL;
            n++;
        }
    }
    assert(n == s->l2_cached);   /* every cached table counted once */
    s->l2_cached = 0;
}

int
qcow2_flush_l2(struct qcow2_state *s)
{
    uint32_t i;
    int r;

    assert(s->flush_step == QCOW2_FLUSH_DATA_SYNCED);
    for (i = 0; i < s->l1_size; i++) {
        struct qcow2_table *t = s->l2[i];
        if (t && t->dirty) {
            r = fmt_event(t->fresh ? FMT_EV_L2_ALLOC_WRITE : FMT_EV_L2_UPDATE);
            if (r == 0) {
                r = hio_pwrite(s->f, t->data, s->cluster_size,
                               t->host_offset);
            }
            if (r < 0) {
                return r;
            }
            t->dirty = false;
            t->fresh = false;
        }
    }
    return 0;
}

/* The L2 table for L1 index @i; with @alloc a missing table is created.
 * *out is NULL when the table does not exist and @alloc is false. */
int
qcow2_get_l2(struct qcow2_state *s, uint64_t i, bool alloc,
             struct qcow2_table **out)
{
    uint64_t l1e, off;
    bool past;
    int r;

    *out = NULL;
    if (i >= s->l1_size) {
        return alloc ? -EUCLEAN : 0;
    }
    if (s->l2[i]) {
        *out = s->l2[i];
        if (alloc && !(s->l1[i] & QCOW_OFLAG_COPIED)) {
            return -ENOTSUP;   /* shared L2 table (internal snapshot) */
        }
        return 0;
    }
    l1e = s->l1[i];
    off = l1e & L1E_OFFSET_MASK;
    if (!off) {
        if (!alloc) {
            return 0;
        }
        r = qcow2_alloc_clusters(s, 1, &off);
        if (r < 0) {
            return r;
        }
        r = qcow2_load_table(s, 0, &s->l2[i]);
        if (r < 0) {
            qcow2_free_clusters_deferred(s, off, 1);
            return r;
        }
        s->l2[i]->host_offset = off;
        s->l2[i]->dirty = true;
        s->l2[i]->fresh = true;
        s->l1[i] = off | QCOW_OFLAG_COPIED;
        qcow2_meta_add(s, off);
        s->l1_dirty = true;
        s->l2_cached++;
        *out = s->l2[i];
        return 0;
    }
    if (off & (s->cluster_size - 1)) {
        return qcow2_mark_corrupt(s, off, "unaligned L2 table offset "
                                  "0x%" PRIx64 " in L1 entry %" PRIu64,
                                  off, i);
    }
    r = qcow2_past_eof(s, off, &past);
    if (r == 0 && past) {
        r = qcow2_mark_corrupt(s, off, "L2 table offset 0x%" PRIx64 " (L1 "
                               "entry %" PRIu64 ") lies past the end of the "
                               "file", off, i);
    }
    if (r < 0) {
        return r;
    }
    if (alloc && !(l1e & QCOW_OFLAG_COPIED)) {
        return -ENOTSUP;
    }
    r = fmt_event(FMT_EV_L2_LOAD);
    if (r < 0) {
        return r;
    }
    r = qcow2_load_table(s, off, &s->l2[i]);
    if (r < 0) {
        return r;
    }
    s->l2_cached++;
    *out = s->l2[i];
    return 0;
}

/* ---------------------------------------------------------------- lookup */

int
qcow2_lookup(struct qcow2_state *s, uint64_t off, uint64_t len,
             struct qcow2_mapping *m)
{
    uint64_t unit = s->subcluster_size;
    uint64_t l2_span = s->cluster_size * s->l2_entries;
    uint64_t l1i = off / l2_span;
    uint64_t end = MIN(off + len, (l1i + 1) * l2_span);
    struct qcow2_table *t;
    uint64_t pos = off;
    bool first = true;
    int r;

    memset(m, 0, sizeof(*m));
    r = qcow2_get_l2(s, l1i, false, &t);
    if (r < 0) {
        return r;
    }
    if (!t) {
        m->type = QC_UNALLOCATED;
        m->length = end - off;
        return 0;
    }
    while (pos < end) {
        uint64_t l2i = (pos >> s->cluster_bits) & (s->l2_entries - 1);
        unsigned sc = (unsigned)((pos & (s->cluster_size - 1)) / unit);

        if (!first && m->type == QC_UNALLOCATED && !m->host &&
            !(pos & (s->cluster_size - 1))) {
            /* Fast path through a run of all-zero entries (unallocated,
             * no host offset, no subcluster bits): the same result as
             * the entry-by-entry loop below, without classifying each. */
            const uint8_t *p = t->data + l2i * s->l2_entry_size;

            while (pos < end && be64_load(p) == 0 &&
                   (!s->ext_l2 || be64_load(p + 8) == 0)) {
                pos = MIN(end, pos + s->cluster_size);
                p += s->l2_entry_size;
            }
            if (pos >= end) {
                break;
            }
            l2i = (pos >> s->cluster_bits) & (s->l2_entries - 1);
            sc = 0;
        }
        uint64_t bitmap, entry = qcow2_l2_get(s, t, l2i, &bitmap);
        enum qcow2_ctype type = qcow2_classify(s, entry, bitmap, sc);
        uint64_t host = (entry & L2E_OFFSET_MASK) + (pos % s->cluster_size);
        uint64_t next = MIN(end, align_down(pos, unit) + unit);

        if (type != QC_COMPRESSED &&
            (entry & L2E_OFFSET_MASK & (s->cluster_size - 1))) {
            /* A host cluster offset (data, or kept by a zero or unused
             * subcluster) must be aligned: QEMU fails such reads too. */
            type = QC_INVALID;
        }
        if (first) {
            m->type = type;
            m->entry = entry;
            m->entry_offset = qcow2_l2_entry_offset(s, t, l2i);
            m->host = (type == QC_NORMAL || ((type == QC_ZERO ||
                       (type == QC_UNALLOCATED && s->ext_l2)) &&
                       (entry & L2E_OFFSET_MASK))) ? host : 0;
            first = false;
            if (type == QC_COMPRESSED || type == QC_INVALID) {
                m->length = MIN(end, align_down(pos, s->cluster_size) +
                                     s->cluster_size) - off;
                return 0;
            }
        } else {
            if (type != m->type) {
                break;
            }
            if (type == QC_NORMAL && host != m->host + (pos - off)) {
                break;
            }
            if ((type == QC_ZERO || type == QC_UNALLOCATED) && m->host &&
                !(entry & L2E_OFFSET_MASK && host == m->host + (pos - off))) {
                break;
            }
            if ((type == QC_ZERO || (type == QC_UNALLOCATED && s->ext_l2)) &&
                !m->host && (entry & L2E_OFFSET_MASK)) {
                break;
            }
        }
        pos = next;
    }
    m->length = pos - off;
    return 0;
}
