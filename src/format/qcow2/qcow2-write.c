/*
 * qcow2-write.c - the write path: in-place writes into COPIED clusters,
 * copy-on-write allocation (standard and extended L2 entries), runs of
 * fresh clusters in one allocation, write-zeroes and discard, and the
 * overlap check that keeps in-place writes off metadata.
 *
 * Writes into a normal cluster whose refcount is 1 (COPIED bit) go in
 * place. Any other write allocates (or reuses a zero-allocated cluster),
 * fills the parts of the cluster (or subclusters) it does not cover with
 * the current guest view, writes it, then updates the cached L2 entry;
 * the entry reaches the disk only at flush, after the data (qcow2.h).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

/* ----------------------------------------------------------------- write */

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int
rebuild_meta_index(struct qcow2_state *s)
{
    uint64_t i;
    size_t n = 0, cap = s->l1_size + s->reftable_entries + 1;
    uint64_t *m = malloc(cap * sizeof(uint64_t));

    if (!m) {
        return -ENOMEM;
    }
    for (i = 0; i < s->l1_size; i++) {
        if (s->l1[i] & L1E_OFFSET_MASK) {
            m[n++] = s->l1[i] & L1E_OFFSET_MASK;
        }
    }
    for (i = 0; i < s->reftable_entries; i++) {
        if (s->reftable[i] & REFT_OFFSET_MASK) {
            m[n++] = s->reftable[i] & REFT_OFFSET_MASK;
        }
    }
    qsort(m, n, sizeof(*m), cmp_u64);
    free(s->meta);
    s->meta = m;
    s->nmeta = n;
    s->meta_cap = cap;
    s->meta_valid = true;
    return 0;
}

/* First index of s->meta whose cluster ends after @host. */
static size_t
meta_search(const struct qcow2_state *s, uint64_t host)
{
    size_t lo = 0, hi = s->nmeta;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->meta[mid] + s->cluster_size <= host) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

void
qcow2_meta_add(struct qcow2_state *s, uint64_t off)
{
    size_t i;

    if (!s->meta_valid || s->nmeta == s->meta_cap) {
        s->meta_valid = false;   /* the next check rebuilds it */
        return;
    }
    i = meta_search(s, off);
    memmove(s->meta + i + 1, s->meta + i, (s->nmeta - i) * sizeof(*s->meta));
    s->meta[i] = off;
    s->nmeta++;
}

/* Refuse in-place writes that would land on metadata (hostile images). */
int
qcow2_check_overlap(struct qcow2_state *s, uint64_t host, uint64_t len,
                    const char *what)
{
    uint64_t cs = s->cluster_size, end = host + len;
    size_t lo;
    int r;

    if (host < cs ||
        (host < s->l1_offset + (uint64_t)s->l1_size * 8 &&
         end > s->l1_offset) ||
        (host < s->reftable_offset + (uint64_t)s->reftable_clusters * cs &&
         end > s->reftable_offset) ||
        (s->nb_snapshots && host < s->snapshots_offset + cs &&
         end > s->snapshots_offset)) {
        return qcow2_mark_corrupt(s, host, "%s of %" PRIu64 " bytes "
                                  "overlaps the header, the L1 table, the "
                                  "refcount table or the snapshot table",
                                  what, len);
    }
    if (!s->meta_valid && (r = rebuild_meta_index(s)) < 0) {
        return r;
    }
    lo = meta_search(s, host);
    if (lo < s->nmeta && s->meta[lo] < end) {
        return qcow2_mark_corrupt(s, host, "%s of %" PRIu64 " bytes "
                                  "overlaps an L2 table or a refcount block "
                                  "at 0x%" PRIx64, what, len, s->meta[lo]);
    }
    return 0;
}

int
qcow2_release_entry(struct qcow2_state *s, uint64_t entry)
{
    uint64_t off = entry & L2E_OFFSET_MASK;

    if (entry & QCOW_OFLAG_COMPRESSED) {
        uint64_t coffset, csize, first, last;

        qcow2_compressed_range(s, entry, &coffset, &csize);
        first = align_down(coffset, 512) >> s->cluster_bits;
        last = (align_down(coffset, 512) +
                (((entry >> s->csize_shift) & s->csize_mask) + 1) * 512 - 1)
               >> s->cluster_bits;
        s->dcache_entry = 0;
        return qcow2_free_clusters_deferred(s, first << s->cluster_bits,
                                            last - first + 1);
    }
    if (off) {
        return qcow2_free_clusters_deferred(s, off, 1);
    }
    return 0;
}

/* Write guest data (event "write_aio"). */
static int
write_data(struct qcow2_state *s, const void *buf, size_t n, uint64_t host)
{
    int r = fmt_event(FMT_EV_WRITE_AIO);

    return r < 0 ? r : hio_pwrite(s->f, buf, n, host);
}

/* Before writing [in, in+len) of the existing cluster at @host in place
 * (its L2 entry at host @entry_off): the cluster must lie inside the
 * file (a damaged entry would grow the file sparsely to wherever it
 * points) and the range off metadata. Marks the image corrupt if not. */
static int
check_in_place(struct qcow2_state *s, uint64_t host, uint64_t in,
               uint64_t len, uint64_t entry_off)
{
    bool past;
    int r = qcow2_past_eof(s, host, &past);

    if (r == 0 && past) {
        r = qcow2_mark_corrupt(s, entry_off, "data cluster offset 0x%" PRIx64
                               " lies past the end of the file", host);
    }
    return r < 0 ? r : qcow2_check_overlap(s, host + in, len, "write");
}

/* Write @n bytes at @off within one cluster (standard L2 entries). */
static int
write_in_cluster_std(struct qcow2_state *s, const uint8_t *buf, uint64_t off,
                     size_t n)
{
    uint64_t cs = s->cluster_size;
    uint64_t coff = align_down(off, cs), in = off - coff;
    uint64_t l2_span = cs * s->l2_entries;
    uint64_t l2i = (off / cs) % s->l2_entries, bitmap, entry, host;
    enum qcow2_ctype type;
    struct qcow2_table *t;
    bool reuse;
    int r;

    r = qcow2_get_l2(s, off / l2_span, true, &t);
    if (r < 0) {
        return r;
    }
    entry = qcow2_l2_get(s, t, l2i, &bitmap);
    type = qcow2_classify(s, entry, bitmap, 0);
    host = entry & L2E_OFFSET_MASK;
    if (type == QC_NORMAL && (entry & QCOW_OFLAG_COPIED)) {
        if (host & (cs - 1)) {
            return qcow2_mark_corrupt(s, qcow2_l2_entry_offset(s, t, l2i),
                                      "unaligned data cluster offset "
                                      "0x%" PRIx64, host);
        }
        r = check_in_place(s, host, in, n, qcow2_l2_entry_offset(s, t, l2i));
        return r < 0 ? r : write_data(s, buf, n, host + in);
    }
    reuse = type == QC_ZERO && host && (entry & QCOW_OFLAG_COPIED) &&
            !(host & (cs - 1));
    if (reuse) {
        r = check_in_place(s, host, 0, cs, qcow2_l2_entry_offset(s, t, l2i));
        if (r < 0) {
            return r;
        }
    } else {
        r = qcow2_alloc_clusters(s, 1, &host);
        if (r < 0) {
            return r;
        }
    }
    if (n == cs) {
        r = write_data(s, buf, n, host);
    } else {
        uint8_t *tmp = malloc(cs);
        if (!tmp) {
            return -ENOMEM;
        }
        r = qcow2_read_view(s, tmp, coff, cs);
        if (r == 0) {
            memcpy(tmp + in, buf, n);
            r = write_data(s, tmp, cs, host);
        }
        free(tmp);
    }
    if (r < 0) {
        if (!reuse) {
            qcow2_free_clusters_deferred(s, host, 1);
        }
        return r;
    }
    qcow2_l2_set(s, t, l2i, host | QCOW_OFLAG_COPIED, 0);
    return reuse ? 0 : qcow2_release_entry(s, entry);
}

/* Copy a whole cluster to a fresh one (compressed or shared source) with
 * @n bytes of @buf at @in, all subclusters allocated. */
static int
cow_whole_cluster(struct qcow2_state *s, struct qcow2_table *t, uint64_t l2i,
                  uint64_t coff, uint64_t entry, const uint8_t *buf,
                  uint64_t in, size_t n)
{
    uint64_t cs = s->cluster_size, host;
    uint8_t *tmp = malloc(cs);
    int r;

    if (!tmp) {
        return -ENOMEM;
    }
    r = qcow2_read_view(s, tmp, coff, cs);
    if (r == 0) {
        memcpy(tmp + in, buf, n);
        r = qcow2_alloc_clusters(s, 1, &host);
    }
    if (r == 0) {
        r = write_data(s, tmp, cs, host);
        if (r < 0) {
            qcow2_free_clusters_deferred(s, host, 1);
        }
    }
    free(tmp);
    if (r < 0) {
        return r;
    }
    qcow2_l2_set(s, t, l2i, host | QCOW_OFLAG_COPIED, QCOW2_SC_ALLOC_ALL);
    return qcow2_release_entry(s, entry);
}

/* Write @n bytes at @off within one cluster (extended L2 entries): only
 * the subclusters touched are written; partial ones are completed from
 * the current guest view. */
static int
write_in_cluster_ext(struct qcow2_state *s, const uint8_t *buf, uint64_t off,
                     size_t n)
{
    uint64_t cs = s->cluster_size, scs = s->subcluster_size;
    uint64_t coff = align_down(off, cs), in = off - coff;
    uint64_t l2i = (off / cs) % s->l2_entries, bitmap, entry, host;
    uint64_t rstart, rend, mask;
    unsigned first, last;
    struct qcow2_table *t;
    int r;

    r = qcow2_get_l2(s, off / (cs * s->l2_entries), true, &t);
    if (r < 0) {
        return r;
    }
    entry = qcow2_l2_get(s, t, l2i, &bitmap);
    host = entry & L2E_OFFSET_MASK;
    if ((entry & QCOW_OFLAG_COMPRESSED) ||
        (host && !(entry & QCOW_OFLAG_COPIED))) {
        return cow_whole_cluster(s, t, l2i, coff, entry, buf, in, n);
    }
    if (((bitmap >> 32) & bitmap) ||
        (host & (cs - 1)) || (!host && (bitmap & QCOW2_SC_ALLOC_ALL))) {
        return qcow2_mark_corrupt(s, qcow2_l2_entry_offset(s, t, l2i),
                                  "invalid extended L2 entry 0x%016" PRIx64
                                  " (bitmap 0x%016" PRIx64 ")", entry, bitmap);
    }
    first = (unsigned)(in / scs);
    last = (unsigned)((in + n - 1) / scs);
    rstart = (uint64_t)first * scs;
    rend = (uint64_t)(last + 1) * scs;
    if (!host) {
        r = qcow2_alloc_clusters(s, 1, &host);
        if (r < 0) {
            return r;
        }
        entry = host | QCOW_OFLAG_COPIED;
    } else {
        r = check_in_place(s, host, rstart, rend - rstart,
                           qcow2_l2_entry_offset(s, t, l2i));
        if (r < 0) {
            return r;
        }
    }
    if (rstart == in && rend == in + n) {
        r = write_data(s, buf, n, host + in);
    } else {
        uint8_t *tmp = malloc(rend - rstart);
        if (!tmp) {
            return -ENOMEM;
        }
        r = qcow2_read_view(s, tmp, coff + rstart, rend - rstart);
        if (r == 0) {
            memcpy(tmp + (in - rstart), buf, n);
            r = write_data(s, tmp, rend - rstart, host + rstart);
        }
        free(tmp);
    }
    if (r < 0) {
        return r;   /* a fresh cluster stays allocated: at worst a leak */
    }
    mask = (last == 31 ? 0xffffffffull : ((1ull << (last + 1)) - 1)) &
           ~((1ull << first) - 1);
    bitmap = (bitmap | mask) & ~(mask << 32);
    qcow2_l2_set(s, t, l2i, entry, bitmap);
    return 0;
}

/* Whole clusters from @off (cluster aligned) that a write of @len bytes
 * covers, all in one L2 table and all needing a fresh cluster (nothing
 * allocated there yet): they can share one allocation and one pwrite. */
static int
fresh_run(struct qcow2_state *s, uint64_t off, uint64_t len,
          struct qcow2_table **tp, uint64_t *count)
{
    uint64_t cs = s->cluster_size, l2i = (off / cs) % s->l2_entries, n = 0;
    uint64_t max = MIN(len / cs, s->l2_entries - l2i);
    struct qcow2_table *t;
    int r;

    *count = 0;
    if (off % cs || max < 2) {
        return 0;
    }
    r = qcow2_get_l2(s, off / (cs * s->l2_entries), true, &t);
    if (r < 0) {
        return r;
    }
    for (n = 0; n < max; n++) {
        uint64_t bitmap, entry = qcow2_l2_get(s, t, l2i + n, &bitmap);
        if ((entry & L2E_OFFSET_MASK) || (entry & QCOW_OFLAG_COMPRESSED)) {
            break;
        }
    }
    *tp = t;
    *count = n;
    return 0;
}

static int
write_fresh_run(struct qcow2_state *s, struct qcow2_table *t,
                const uint8_t *buf, uint64_t off, uint64_t count)
{
    uint64_t cs = s->cluster_size, l2i = (off / cs) % s->l2_entries, host, i;
    int r = qcow2_alloc_clusters(s, count, &host);

    if (r < 0) {
        return r;
    }
    r = write_data(s, buf, count * cs, host);
    if (r < 0) {
        qcow2_free_clusters_deferred(s, host, count);
        return r;
    }
    for (i = 0; i < count; i++) {
        uint64_t bitmap, old = qcow2_l2_get(s, t, l2i + i, &bitmap);
        qcow2_l2_set(s, t, l2i + i, (host + i * cs) | QCOW_OFLAG_COPIED,
                     s->ext_l2 ? QCOW2_SC_ALLOC_ALL : 0);
        r = qcow2_release_entry(s, old);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* The start of every write entry point: the driver contract, a trimmed
 * L2 cache, and no writing to an image found corrupt. */
static int
begin_write(struct vmc_image *img, uint64_t off, uint64_t len)
{
    struct qcow2_state *s = qcow2_s(img);
    int r;

    assert(format_entry_ok(img, off, len));
    r = qcow2_l2_cache_trim(s);
    if (r < 0) {
        return r;
    }
    return s->corrupt ? qcow2_corrupt_refusal(s) : 0;
}

int
qcow2_write(struct vmc_image *img, const void *buf, uint64_t off, size_t len,
            unsigned flags)
{
    struct qcow2_state *s = qcow2_s(img);
    const uint8_t *p = buf;
    int r = begin_write(img, off, len);

    if (r < 0) {
        return r;
    }
    while (len) {
        size_t n = (size_t)MIN((uint64_t)len,
                               s->cluster_size - off % s->cluster_size);
        struct qcow2_table *t = NULL;
        uint64_t count = 0;

        r = fresh_run(s, off, len, &t, &count);
        if (r < 0) {
            return r;
        }
        if (count >= 2) {
            r = write_fresh_run(s, t, p, off, count);
            n = (size_t)(count * s->cluster_size);
        } else {
            r = s->ext_l2 ? write_in_cluster_ext(s, p, off, n)
                          : write_in_cluster_std(s, p, off, n);
        }
        if (r < 0) {
            return r;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* ----------------------------------------------------------------- zeros */

static int
write_zero_bytes(struct qcow2_state *s, uint64_t off, uint64_t len)
{
    uint8_t *zeros;
    int r = 0;

    zeros = calloc(1, s->cluster_size);
    if (!zeros) {
        return -ENOMEM;
    }
    while (len && r == 0) {
        size_t n = (size_t)MIN(len, s->cluster_size - off % s->cluster_size);
        r = s->ext_l2 ? write_in_cluster_ext(s, zeros, off, n)
                      : write_in_cluster_std(s, zeros, off, n);
        off += n;
        len -= n;
    }
    free(zeros);
    return r;
}

/* Does the current view of [off, off+len) (inside one cluster) already
 * read as zeros without looking at data? */
static int
range_reads_zero(struct qcow2_state *s, uint64_t off, uint64_t len,
                 bool *zero)
{
    while (len) {
        struct qcow2_mapping m;
        int r = qcow2_lookup(s, off, len, &m);

        if (r < 0) {
            return r;
        }
        if (m.type == QC_UNALLOCATED) {
            if (!format_backing_is_zero(s->img, off, m.length)) {
                *zero = false;
                return 0;
            }
        } else if (m.type != QC_ZERO) {
            *zero = false;
            return 0;
        }
        off += m.length;
        len -= m.length;
    }
    *zero = true;
    return 0;
}

/* Zero part of a cluster by writing zeros, unless it reads as zeros. */
static int
zero_partial(struct qcow2_state *s, uint64_t off, uint64_t len)
{
    bool zero = false;
    int r = range_reads_zero(s, off, len, &zero);

    return r < 0 || zero ? r : write_zero_bytes(s, off, len);
}

static int zero_cluster_std(struct qcow2_state *s, uint64_t coff,
                            bool unmap, bool discard);

/* Zero part of a cluster (standard L2 entries). Like QEMU, when the rest
 * of the cluster already reads as zeros the whole cluster becomes a zero
 * cluster instead of being allocated. */
static int
zero_partial_std(struct qcow2_state *s, uint64_t coff, uint64_t off,
                 uint64_t len, bool unmap)
{
    uint64_t clen = MIN(s->cluster_size, s->img->size - coff);
    bool zero = false;
    int r;

    if (s->version >= 3) {
        r = range_reads_zero(s, coff, clen, &zero);
        if (r < 0) {
            return r;
        }
        if (zero) {
            return zero_cluster_std(s, coff, unmap, false);
        }
    }
    return zero_partial(s, off, len);
}

/* Make one whole cluster read as zeros (standard L2 entries). With
 * @unmap the host cluster is released. */
static int
zero_cluster_std(struct qcow2_state *s, uint64_t coff, bool unmap,
                 bool discard)
{
    uint64_t cs = s->cluster_size;
    uint64_t l2i = (coff / cs) % s->l2_entries, bitmap, entry;
    bool has_backing = s->img->backing_name != NULL;
    enum qcow2_ctype type;
    struct qcow2_table *t;
    int r;

    r = qcow2_get_l2(s, coff / (cs * s->l2_entries), false, &t);
    if (r < 0) {
        return r;
    }
    entry = t ? qcow2_l2_get(s, t, l2i, &bitmap) : 0;
    type = qcow2_classify(s, entry, 0, 0);
    if (type == QC_UNALLOCATED && !has_backing &&
        (discard || s->version < 3)) {
        return 0;                       /* reads as zeros already */
    }
    if (type == QC_ZERO && (!unmap || !(entry & L2E_OFFSET_MASK))) {
        return 0;
    }
    if (s->version < 3) {
        if (has_backing) {
            return write_zero_bytes(s, coff, MIN(cs, s->img->size - coff));
        }
        r = qcow2_get_l2(s, coff / (cs * s->l2_entries), true, &t);
        if (r < 0) {
            return r;
        }
        qcow2_l2_set(s, t, l2i, 0, 0);
        return qcow2_release_entry(s, entry);
    }
    r = qcow2_get_l2(s, coff / (cs * s->l2_entries), true, &t);
    if (r < 0) {
        return r;
    }
    if (type == QC_NORMAL && (entry & QCOW_OFLAG_COPIED) && !unmap) {
        qcow2_l2_set(s, t, l2i, entry | QCOW_OFLAG_ZERO, 0);
        return 0;
    }
    /* A discard in an image without backing file may simply unallocate;
     * anything else records an explicit zero cluster (as QEMU does). */
    qcow2_l2_set(s, t, l2i, discard && !has_backing ? 0 : QCOW_OFLAG_ZERO,
                 0);
    return qcow2_release_entry(s, entry);
}

/* Zero whole subclusters [first, last] of one cluster (extended L2). */
static int
zero_subclusters(struct qcow2_state *s, uint64_t coff, unsigned first,
                 unsigned last, bool unmap)
{
    uint64_t cs = s->cluster_size;
    uint64_t l2i = (coff / cs) % s->l2_entries, bitmap, entry, mask;
    bool whole = first == 0 && last == 31;
    struct qcow2_table *t;
    int r;

    r = qcow2_get_l2(s, coff / (cs * s->l2_entries), true, &t);
    if (r < 0) {
        return r;
    }
    entry = qcow2_l2_get(s, t, l2i, &bitmap);
    mask = (last == 31 ? 0xffffffffull : ((1ull << (last + 1)) - 1)) &
           ~((1ull << first) - 1);
    if ((entry & QCOW_OFLAG_COMPRESSED) ||
        ((entry & L2E_OFFSET_MASK) && !(entry & QCOW_OFLAG_COPIED))) {
        if (!whole) {
            uint64_t a = (uint64_t)first * s->subcluster_size;
            uint64_t b = (uint64_t)(last + 1) * s->subcluster_size;
            return write_zero_bytes(s, coff + a, b - a);
        }
        qcow2_l2_set(s, t, l2i, 0, QCOW2_SC_ZERO_ALL);
        return qcow2_release_entry(s, entry);
    }
    if (whole && unmap && (entry & L2E_OFFSET_MASK)) {
        qcow2_l2_set(s, t, l2i, 0, QCOW2_SC_ZERO_ALL);
        return qcow2_release_entry(s, entry);
    }
    bitmap = (bitmap & ~mask) | (mask << 32);
    qcow2_l2_set(s, t, l2i, entry, bitmap);
    return 0;
}

static int
zero_range(struct qcow2_state *s, uint64_t off, uint64_t len, bool unmap,
           bool discard)
{
    uint64_t cs = s->cluster_size, size = s->img->size;
    int r = 0;

    while (len && r == 0) {
        uint64_t coff = align_down(off, cs), in = off - coff;
        uint64_t n = MIN(len, cs - in);
        bool full = in == 0 && (n == cs || off + n >= size);

        if (s->ext_l2) {
            uint64_t scs = s->subcluster_size;
            uint64_t a = align_up(in, scs), b = align_down(in + n, scs);

            if (off + n >= size) {
                b = align_up(in + n, scs);   /* tail of the image */
            }
            uint64_t head_end = MIN(a, in + n), tail = MAX(a, b);

            if (a < b) {
                r = zero_subclusters(s, coff, (unsigned)(a / scs),
                                     (unsigned)(b / scs - 1), unmap);
            }
            if (!discard && r == 0 && in < head_end) {
                r = zero_partial(s, off, head_end - in);
            }
            if (!discard && r == 0 && tail < in + n) {
                r = zero_partial(s, coff + tail, in + n - tail);
            }
        } else if (full) {
            r = zero_cluster_std(s, coff, unmap, discard);
        } else if (!discard) {
            r = zero_partial_std(s, coff, off, n, unmap);
        }
        off += n;
        len -= n;
    }
    return r;
}

int
qcow2_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                   unsigned flags)
{
    int r = begin_write(img, off, len);

    return r < 0 ? r : zero_range(qcow2_s(img), off, len,
                                  (flags & VMC_WRITE_MAY_UNMAP) != 0, false);
}

int
qcow2_discard(struct vmc_image *img, uint64_t off, uint64_t len)
{
    int r = begin_write(img, off, len);

    if (r < 0) {
        return r;
    }
    if (qcow2_s(img)->version < 3 && img->backing_name) {
        return 0;   /* cannot express "reads as zeros": ignore, like QEMU */
    }
    return zero_range(qcow2_s(img), off, len, true, true);
}
