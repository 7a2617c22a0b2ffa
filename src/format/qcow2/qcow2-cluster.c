/*
 * qcow2-cluster.c - the data path over the L1/L2 mapping (qcow2-l2.c)
 * apart from writes (qcow2-write.c): read, block status, compressed
 * writes, preallocation, dropping a tail and emptying a layer.
 *
 * Cluster states (qcow2 spec "Cluster mapping", with extended L2 entries
 * per 1/32 subcluster): unallocated (read through to the backing file),
 * zero (reads zeros, never the backing file), normal (host data),
 * compressed (read-only: a write copies the cluster to a new one).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
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
        return qcow2_mark_corrupt(s, coffset, "compressed cluster too "
                                  "large (%" PRIu64 " bytes)", csize);
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
            r = format_read_backing(img, buf, off, n);
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
            r = qcow2_mark_corrupt(s, m.entry_offset, "invalid L2 entry "
                                   "0x%016" PRIx64 " for guest offset "
                                   "%" PRIu64, m.entry, off);
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
    int r;

    assert(format_entry_ok(img, off, len));
    r = qcow2_l2_cache_trim(s);
    return r < 0 ? r : read_locked(s, buf, off, len);
}

/* Read the current guest view of [off, off+len), zeros past the end. */
int
qcow2_read_view(struct qcow2_state *s, uint8_t *buf, uint64_t off,
                size_t len)
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

/* ---------------------------------------------------------- block status */

int
qcow2_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                   struct vmc_block_status *out)
{
    struct qcow2_state *s = qcow2_s(img);
    struct qcow2_mapping m;
    int r;

    assert(image_lock_held(img) && off < img->size);
    r = qcow2_l2_cache_trim(s);
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
        return qcow2_mark_corrupt(s, m.entry_offset, "invalid L2 entry "
                                  "0x%016" PRIx64 " for guest offset "
                                  "%" PRIu64, m.entry, off);
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

    assert(format_entry_ok(img, off, len));
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
    r = qcow2_release_entry(s, entry);
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
            r = qcow2_release_entry(s, entry);
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
            r = qcow2_release_entry(s, entry);
        }
        if (r == 0) {
            r = qcow2_free_clusters_deferred(s, l2off, 1);
        }
        if (t) {
            free(t->data);
            free(t);
            s->l2[i] = NULL;
            assert(s->l2_cached > 0);
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
