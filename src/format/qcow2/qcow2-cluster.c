/*
 * qcow2-cluster.c - the data path over the L1/L2 mapping (qcow2-l2.c):
 * read, copy-on-write allocation, write-zeroes, discard, block status,
 * compressed writes, preallocation and emptying a layer.
 *
 * Cluster states (qcow2 spec "Cluster mapping", with extended L2 entries
 * per 1/32 subcluster): unallocated (read through to the backing file),
 * zero (reads zeros, never the backing file), normal (host data),
 * compressed (read-only: a write copies the cluster to a new one).
 *
 * Writes into a normal cluster whose refcount is 1 (COPIED bit) go in
 * place. Any other write allocates (or reuses a zero-allocated cluster),
 * fills the parts of the cluster (or subclusters) it does not cover with
 * the current guest view, writes it, then updates the cached L2 entry;
 * the entry reaches the disk only at flush, after the data (qcow2.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

/* ------------------------------------------------------------------ read */

static int
read_compressed(struct qcow2_state *s, uint64_t entry, uint8_t **out)
{
    uint64_t coffset, csize;
    int r;

    if (s->dcache_entry == entry && entry) {
        *out = s->dcache;
        return 0;
    }
    if (!s->dcache) {
        s->dcache = malloc(s->cluster_size);
        s->cbuf = malloc(s->cluster_size * 2 + 512);
        if (!s->dcache || !s->cbuf) {
            free(s->dcache);
            free(s->cbuf);
            s->dcache = s->cbuf = NULL;
            return -ENOMEM;
        }
    }
    qcow2_compressed_range(s, entry, &coffset, &csize);
    if (csize > s->cluster_size * 2 + 512) {
        return qcow2_mark_corrupt(s, "compressed cluster too large");
    }
    r = hio_pread(s->f, s->cbuf, csize, coffset);
    if (r < 0) {
        return r;
    }
    r = qcow2_decompress(s->compression_type, s->cbuf, csize, s->dcache,
                         s->cluster_size);
    if (r < 0) {
        s->dcache_entry = 0;
        return r;
    }
    s->dcache_entry = entry;
    *out = s->dcache;
    return 0;
}

static int
read_locked(struct qcow2_state *s, uint8_t *buf, uint64_t off, size_t len)
{
    struct vmc_image *img = s->img;
    int r;

    while (len) {
        struct qcow2_mapping m;
        size_t n;

        r = qcow2_lookup(s, off, len, &m);
        if (r < 0) {
            return r;
        }
        n = (size_t)m.length;
        switch (m.type) {
        case QC_NORMAL:
            r = hio_pread(s->f, buf, n, m.host);
            break;
        case QC_ZERO:
            memset(buf, 0, n);
            r = 0;
            break;
        case QC_UNALLOCATED:
            r = image_read_backing(img, buf, off, n);
            break;
        case QC_COMPRESSED: {
            uint8_t *data = NULL;
            r = read_compressed(s, m.entry, &data);
            if (r == 0) {
                memcpy(buf, data + off % s->cluster_size, n);
            }
            break;
        }
        default:
            r = qcow2_mark_corrupt(s, "invalid L2 entry");
            break;
        }
        if (r < 0) {
            return r;
        }
        buf += n;
        off += n;
        len -= n;
    }
    return 0;
}

int
qcow2_read(struct vmc_image *img, void *buf, uint64_t off, size_t len)
{
    struct qcow2_state *s = qcow2_s(img);
    int r = qcow2_l2_cache_trim(s);

    return r < 0 ? r : read_locked(s, buf, off, len);
}

/* Read the current guest view of [off, off+len), zeros past the end. */
static int
read_view(struct qcow2_state *s, uint8_t *buf, uint64_t off, size_t len)
{
    size_t n = 0;

    if (off < s->img->size) {
        n = (size_t)MIN((uint64_t)len, s->img->size - off);
        int r = read_locked(s, buf, off, n);
        if (r < 0) {
            return r;
        }
    }
    memset(buf + n, 0, len - n);
    return 0;
}

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
    size_t n = 0;
    uint64_t *m = malloc((s->l1_size + s->reftable_entries + 1) *
                         sizeof(uint64_t));

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
    s->meta_valid = true;
    return 0;
}

/* Refuse in-place writes that would land on metadata (hostile images). */
int
qcow2_check_overlap(struct qcow2_state *s, uint64_t host, uint64_t len)
{
    uint64_t cs = s->cluster_size, end = host + len;
    size_t lo = 0, hi;
    int r;

    if (host < cs ||
        (host < s->l1_offset + (uint64_t)s->l1_size * 8 &&
         end > s->l1_offset) ||
        (host < s->reftable_offset + (uint64_t)s->reftable_clusters * cs &&
         end > s->reftable_offset) ||
        (s->nb_snapshots && host < s->snapshots_offset + cs &&
         end > s->snapshots_offset)) {
        return qcow2_mark_corrupt(s, "write overlaps metadata");
    }
    if (!s->meta_valid && (r = rebuild_meta_index(s)) < 0) {
        return r;
    }
    /* First metadata cluster that ends after host. */
    hi = s->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->meta[mid] + cs <= host) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < s->nmeta && s->meta[lo] < end) {
        return qcow2_mark_corrupt(s, "write overlaps an L2 table or a "
                                  "refcount block");
    }
    return 0;
}

/* Queue the release of whatever host clusters an old L2 entry held. */
static int
release_entry(struct qcow2_state *s, uint64_t entry)
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
            return qcow2_mark_corrupt(s, "unaligned data cluster");
        }
        r = qcow2_check_overlap(s, host + in, n);
        return r < 0 ? r : hio_pwrite(s->f, buf, n, host + in);
    }
    reuse = type == QC_ZERO && host && (entry & QCOW_OFLAG_COPIED) &&
            !(host & (cs - 1));
    if (reuse) {
        r = qcow2_check_overlap(s, host, cs);
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
        r = hio_pwrite(s->f, buf, n, host);
    } else {
        uint8_t *tmp = malloc(cs);
        if (!tmp) {
            return -ENOMEM;
        }
        r = read_view(s, tmp, coff, cs);
        if (r == 0) {
            memcpy(tmp + in, buf, n);
            r = hio_pwrite(s->f, tmp, cs, host);
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
    return reuse ? 0 : release_entry(s, entry);
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
    r = read_view(s, tmp, coff, cs);
    if (r == 0) {
        memcpy(tmp + in, buf, n);
        r = qcow2_alloc_clusters(s, 1, &host);
    }
    if (r == 0) {
        r = hio_pwrite(s->f, tmp, cs, host);
        if (r < 0) {
            qcow2_free_clusters_deferred(s, host, 1);
        }
    }
    free(tmp);
    if (r < 0) {
        return r;
    }
    qcow2_l2_set(s, t, l2i, host | QCOW_OFLAG_COPIED, QCOW2_SC_ALLOC_ALL);
    return release_entry(s, entry);
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
    if ((entry & QCOW_OFLAG_ZERO) || ((bitmap >> 32) & bitmap) ||
        (host & (cs - 1)) || (!host && (bitmap & QCOW2_SC_ALLOC_ALL))) {
        return qcow2_mark_corrupt(s, "invalid extended L2 entry");
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
        r = qcow2_check_overlap(s, host + rstart, rend - rstart);
        if (r < 0) {
            return r;
        }
    }
    if (rstart == in && rend == in + n) {
        r = hio_pwrite(s->f, buf, n, host + in);
    } else {
        uint8_t *tmp = malloc(rend - rstart);
        if (!tmp) {
            return -ENOMEM;
        }
        r = read_view(s, tmp, coff + rstart, rend - rstart);
        if (r == 0) {
            memcpy(tmp + (in - rstart), buf, n);
            r = hio_pwrite(s->f, tmp, rend - rstart, host + rstart);
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
    r = hio_pwrite(s->f, buf, count * cs, host);
    if (r < 0) {
        qcow2_free_clusters_deferred(s, host, count);
        return r;
    }
    for (i = 0; i < count; i++) {
        uint64_t bitmap, old = qcow2_l2_get(s, t, l2i + i, &bitmap);
        qcow2_l2_set(s, t, l2i + i, (host + i * cs) | QCOW_OFLAG_COPIED,
                     s->ext_l2 ? QCOW2_SC_ALLOC_ALL : 0);
        r = release_entry(s, old);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

int
qcow2_write(struct vmc_image *img, const void *buf, uint64_t off, size_t len,
            unsigned flags)
{
    struct qcow2_state *s = qcow2_s(img);
    const uint8_t *p = buf;
    int r = qcow2_l2_cache_trim(s);

    if (r < 0) {
        return r;
    }
    if (s->corrupt) {
        return -EUCLEAN;
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
            if (!image_backing_is_zero(s->img, off, m.length)) {
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
        return release_entry(s, entry);
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
    return release_entry(s, entry);
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
        return release_entry(s, entry);
    }
    if (whole && unmap && (entry & L2E_OFFSET_MASK)) {
        qcow2_l2_set(s, t, l2i, 0, QCOW2_SC_ZERO_ALL);
        return release_entry(s, entry);
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
    struct qcow2_state *s = qcow2_s(img);
    int r = qcow2_l2_cache_trim(s);

    if (r < 0) {
        return r;
    }
    if (s->corrupt) {
        return -EUCLEAN;
    }
    return zero_range(s, off, len, (flags & VMC_WRITE_MAY_UNMAP) != 0,
                      false);
}

int
qcow2_discard(struct vmc_image *img, uint64_t off, uint64_t len)
{
    struct qcow2_state *s = qcow2_s(img);
    int r = qcow2_l2_cache_trim(s);

    if (r < 0) {
        return r;
    }
    if (s->corrupt) {
        return -EUCLEAN;
    }
    if (s->version < 3 && img->backing_name) {
        return 0;   /* cannot express "reads as zeros": ignore, like QEMU */
    }
    return zero_range(s, off, len, true, true);
}

/* ---------------------------------------------------------- block status */

int
qcow2_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                   struct vmc_block_status *out)
{
    struct qcow2_state *s = qcow2_s(img);
    struct qcow2_mapping m;
    int r = qcow2_l2_cache_trim(s);

    if (r < 0) {
        return r;
    }
    r = qcow2_lookup(s, off, len, &m);
    if (r < 0) {
        return r;
    }
    memset(out, 0, sizeof(*out));
    out->length = m.length;
    switch (m.type) {
    case QC_NORMAL:
        out->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_OFFSET;
        out->host_offset = m.host;
        if (s->sparse_file) {
            /* Preallocated clusters that were never written are holes in
             * the host file: they read as zeros (qemu-img map says so). */
            bool is_data = true;
            uint64_t run = m.length;
            if (hio_data_run(s->f, m.host, m.length, &is_data, &run) == 0 &&
                run > 0) {
                out->length = run;
                if (!is_data) {
                    out->flags |= VMC_BS_ZERO;
                }
            }
        }
        break;
    case QC_ZERO:
        out->flags = VMC_BS_ALLOCATED | VMC_BS_ZERO;
        if (m.host) {
            out->flags |= VMC_BS_OFFSET;
            out->host_offset = m.host;
        }
        break;
    case QC_COMPRESSED:
        out->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_COMPRESSED;
        break;
    case QC_UNALLOCATED:
        out->flags = 0;
        if (m.host) {   /* extended L2: host cluster, subcluster unused */
            out->flags = VMC_BS_OFFSET;
            out->host_offset = m.host;
        }
        break;
    default:
        return qcow2_mark_corrupt(s, "invalid L2 entry");
    }
    return 0;
}

/* ------------------------------------------------------------ compressed */

int
qcow2_write_compressed(struct vmc_image *img, const void *buf, uint64_t off,
                       size_t len)
{
    struct qcow2_state *s = qcow2_s(img);
    uint64_t cs = s->cluster_size, l2i, bitmap, entry, coffset, extra, rc;
    struct qcow2_table *t;
    uint8_t *in = NULL, *out = NULL;
    long clen;
    int r;

    if (off % cs || len > cs || (len < cs && off + len != img->size)) {
        return -EINVAL;
    }
    r = qcow2_l2_cache_trim(s);
    if (r < 0) {
        return r;
    }
    r = qcow2_get_l2(s, off / (cs * s->l2_entries), true, &t);
    if (r < 0) {
        return r;
    }
    l2i = (off / cs) % s->l2_entries;
    entry = qcow2_l2_get(s, t, l2i, &bitmap);
    if ((entry & L2E_OFFSET_MASK) || (entry & QCOW_OFLAG_COMPRESSED) ||
        (bitmap & QCOW2_SC_ALLOC_ALL)) {
        return qcow2_write(img, buf, off, len, 0);   /* not a fresh cluster */
    }
    in = calloc(1, cs);
    out = malloc(cs);
    if (!in || !out) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(in, buf, len);
    clen = qcow2_compress(s->compression_type, in, cs, out, cs);
    if (clen < 0) {
        r = (int)clen;
        goto out;
    }
    if (clen == 0 || (uint64_t)clen >= cs) {
        r = qcow2_write(img, buf, off, len, 0);
        goto out;
    }
    /* Pack into the current compressed cluster if it fits. */
    rc = 0;
    if (s->cwrite_offset && s->cwrite_offset + (uint64_t)clen <=
        s->cwrite_end) {
        r = qcow2_refcount_get(s, s->cwrite_offset >> s->cluster_bits, &rc);
        if (r < 0) {
            goto out;
        }
    }
    if (rc && rc < s->refcount_max) {
        coffset = s->cwrite_offset;
        r = qcow2_refcount_set(s, coffset >> s->cluster_bits, rc + 1);
    } else {
        r = qcow2_alloc_clusters(s, 1, &coffset);
        s->cwrite_end = coffset + cs;
    }
    if (r < 0) {
        goto out;
    }
    r = hio_pwrite(s->f, out, (size_t)clen, coffset);
    if (r < 0) {
        goto out;
    }
    s->cwrite_offset = coffset + (uint64_t)clen;
    extra = ((coffset + (uint64_t)clen - 1) >> 9) - (coffset >> 9);
    qcow2_l2_set(s, t, l2i, QCOW_OFLAG_COMPRESSED |
                 (extra << s->csize_shift) | coffset, 0);
    s->dcache_entry = 0;
    r = release_entry(s, entry);
out:
    free(in);
    free(out);
    return r;
}

/* ---------------------------------------------------------- preallocate */

int
qcow2_preallocate(struct vmc_image *img, enum vmc_prealloc mode,
                  struct vmc_error *err)
{
    struct qcow2_state *s = qcow2_s(img);
    uint64_t cs = s->cluster_size, off, end = 0, first = UINT64_MAX;
    int r = 0;

    for (off = 0; off < img->size && r == 0; off += cs) {
        uint64_t l2i = (off / cs) % s->l2_entries, bitmap, entry, host;
        struct qcow2_table *t;

        r = qcow2_get_l2(s, off / (cs * s->l2_entries), true, &t);
        if (r < 0) {
            break;
        }
        entry = qcow2_l2_get(s, t, l2i, &bitmap);
        if (entry & L2E_OFFSET_MASK) {
            continue;
        }
        r = qcow2_alloc_clusters(s, 1, &host);
        if (r < 0) {
            break;
        }
        first = MIN(first, host);
        end = MAX(end, host + cs);
        qcow2_l2_set(s, t, l2i, host | QCOW_OFLAG_COPIED,
                     img->backing_name ? 0 : QCOW2_SC_ALLOC_ALL);
    }
    if (r == 0 && end) {
        uint64_t flen = 0;
        r = hio_length(s->f, &flen);
        if (r == 0 && flen < end) {
            r = hio_truncate(s->f, end);
        }
        if (r == 0 && mode == VMC_PREALLOC_FALLOC) {
            r = hio_allocate(s->f, first, end - first);
        } else if (r == 0 && mode == VMC_PREALLOC_FULL) {
            r = hio_zero_range(s->f, first, end - first, false);
            if (r == 0) {
                r = hio_allocate(s->f, first, end - first);
            }
        }
    }
    if (r < 0) {
        return vmc_error_set(err, r, "cannot preallocate '%s': %s",
                             img->filename, strerror(-r));
    }
    return 0;
}

/* ----------------------------------------------------------- discard tail */

int
qcow2_discard_tail(struct qcow2_state *s, uint64_t from)
{
    uint64_t cs = s->cluster_size, off;
    uint64_t end = align_up(s->img->size, cs);
    int r = 0;

    for (off = from; off < end && r == 0; off += cs) {
        uint64_t l2i = (off / cs) % s->l2_entries, bitmap, entry;
        struct qcow2_table *t;

        r = qcow2_get_l2(s, off / (cs * s->l2_entries), false, &t);
        if (r < 0 || !t) {
            /* Skip to the next L2 table. */
            off = align_up(off + 1, cs * s->l2_entries) - cs;
            continue;
        }
        entry = qcow2_l2_get(s, t, l2i, &bitmap);
        if (!entry && !bitmap) {
            continue;
        }
        r = qcow2_get_l2(s, off / (cs * s->l2_entries), true, &t);
        if (r == 0) {
            qcow2_l2_set(s, t, l2i, 0, 0);
            r = release_entry(s, entry);
        }
    }
    return r;
}

/* ------------------------------------------------------------ make_empty */

int
qcow2_make_empty(struct vmc_image *img, struct vmc_error *err)
{
    struct qcow2_state *s = qcow2_s(img);
    uint32_t i;
    int r = 0;

    for (i = 0; i < s->l1_size && r == 0; i++) {
        uint64_t l2off = s->l1[i] & L1E_OFFSET_MASK, j;
        struct qcow2_table *t;

        if (!l2off) {
            continue;
        }
        r = qcow2_get_l2(s, i, false, &t);
        for (j = 0; r == 0 && t && j < s->l2_entries; j++) {
            uint64_t bitmap, entry = qcow2_l2_get(s, t, j, &bitmap);
            r = release_entry(s, entry);
        }
        if (r == 0) {
            r = qcow2_free_clusters_deferred(s, l2off, 1);
        }
        if (t) {
            free(t->data);
            free(t);
            s->l2[i] = NULL;
            s->l2_cached--;
        }
        s->l1[i] = 0;
        s->l1_dirty = true;
        s->meta_valid = false;
    }
    if (r < 0) {
        return vmc_error_set(err, r, "cannot empty '%s': %s", img->filename,
                             strerror(-r));
    }
    return 0;
}
