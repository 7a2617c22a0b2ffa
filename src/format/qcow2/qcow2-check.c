/*
 * qcow2-check.c - consistency check and repair of one qcow2 layer, with
 * the semantics of `qemu-img check`: recount every reference to every
 * host cluster (header, L1/L2 of the active table and of internal
 * snapshots, refcount structures, snapshot table, bitmaps), compare with
 * the stored refcounts (higher = leak, lower = corruption), verify the
 * COPIED flags, reserved bits and alignment, and optionally repair.
 *
 * Repair applies stored-refcount fixes only after the whole comparison
 * (so that refcount blocks allocated by the repair are not mistaken for
 * leaks), with every referenced cluster reserved against allocation.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/qcow2/qcow2.h"
#include "util/util.h"

struct check_ctx {
    struct qcow2_state *s;
    uint32_t *refs;          /* computed references per host cluster */
    uint64_t nrefs;          /* allocated length of refs */
    uint64_t file_clusters;  /* clusters in the file (rounded up) */
    uint64_t limit;          /* refs beyond this index are errors */
    struct vmc_check_result *res;
    vmc_check_report_fn report;
    void *opaque;
    uint64_t next_contiguous;
};

static void __attribute__((format(printf, 2, 3)))
report(struct check_ctx *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!c->report) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    c->report(line, c->opaque);
}

/* Count one reference to each cluster of [off, off + len). */
static int
add_ref(struct check_ctx *c, uint64_t off, uint64_t len)
{
    uint64_t first, last, i;

    if (!len) {
        return 0;
    }
    first = off >> c->s->cluster_bits;
    last = (off + len - 1) >> c->s->cluster_bits;
    if (last >= c->limit || last < first) {
        report(c, "ERROR: reference to offset 0x%" PRIx64 " beyond the end "
               "of the image file", off);
        c->res->corruptions++;
        return 0;
    }
    if (last >= c->nrefs) {
        uint64_t n = MIN(MAX(last + 1, c->nrefs * 2), c->limit);
        uint32_t *p = realloc(c->refs, n * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        memset(p + c->nrefs, 0, (n - c->nrefs) * sizeof(*p));
        c->refs = p;
        c->nrefs = n;
    }
    for (i = first; i <= last; i++) {
        if (c->refs[i] < UINT32_MAX) {
            c->refs[i]++;
        }
    }
    return 0;
}

static int
read_table(struct qcow2_state *s, uint64_t off, uint64_t bytes,
           uint8_t **out)
{
    uint8_t *buf = malloc(bytes ? bytes : 1);
    int r;

    if (!buf) {
        return -ENOMEM;
    }
    r = hio_pread(s->f, buf, bytes, off);
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    return 0;
}

/* Count the references of one L2 table. */
static int
check_l2(struct check_ctx *c, const uint8_t *l2, bool active)
{
    struct qcow2_state *s = c->s;
    uint64_t cs = s->cluster_size, j;
    int r;

    for (j = 0; j < s->l2_entries; j++) {
        const uint8_t *p = l2 + j * s->l2_entry_size;
        uint64_t entry = be64_load(p);
        uint64_t bitmap = s->ext_l2 ? be64_load(p + 8) : 0;
        uint64_t off = entry & L2E_OFFSET_MASK;

        if (entry & QCOW_OFLAG_COMPRESSED) {
            uint64_t coffset, csize, nb;

            if (entry & QCOW_OFLAG_COPIED) {
                report(c, "ERROR: compressed cluster with COPIED flag: "
                       "l2_entry=%" PRIx64, entry);
                c->res->corruptions++;
            }
            if (bitmap) {
                report(c, "ERROR compressed cluster %" PRIu64 " with "
                       "non-zero subcluster allocation bitmap", j);
                c->res->corruptions++;
            }
            qcow2_compressed_range(s, entry, &coffset, &csize);
            nb = ((entry >> s->csize_shift) & s->csize_mask) + 1;
            r = add_ref(c, align_down(coffset, 512), nb * 512);
            if (r < 0) {
                return r;
            }
            if (active) {
                c->res->allocated_clusters++;
                c->res->compressed_clusters++;
                /* Compressed clusters count as fragmented, as in QEMU. */
                c->res->fragmented_clusters++;
                c->next_contiguous = 0;
            }
            continue;
        }
        if (!s->ext_l2 && (entry & L2E_STD_RESERVED_MASK)) {
            report(c, "ERROR found l2 entry with reserved bits set: %" PRIx64,
                   entry);
            c->res->corruptions++;
        }
        if (s->ext_l2) {
            if ((entry & QCOW_OFLAG_ZERO) || ((bitmap >> 32) & bitmap) ||
                (!off && (bitmap & QCOW2_SC_ALLOC_ALL))) {
                report(c, "ERROR invalid cluster entry: 0x%" PRIx64
                       " bitmap 0x%" PRIx64, entry, bitmap);
                c->res->corruptions++;
            }
        } else if (s->version < 3 && (entry & QCOW_OFLAG_ZERO)) {
            report(c, "ERROR: zero cluster in a version 2 image: 0x%" PRIx64,
                   entry);
            c->res->corruptions++;
        }
        if (!off) {
            if (entry & QCOW_OFLAG_COPIED) {
                report(c, "ERROR: unallocated cluster with COPIED flag");
                c->res->corruptions++;
            }
            continue;
        }
        if (off & (cs - 1)) {
            report(c, "ERROR offset=%" PRIx64 ": Cluster is not properly "
                   "aligned; L2 entry corrupted.", off);
            c->res->corruptions++;
            continue;
        }
        if (active) {
            c->res->allocated_clusters++;
            if (c->next_contiguous && off != c->next_contiguous) {
                c->res->fragmented_clusters++;
            }
            c->next_contiguous = off + cs;
        }
        r = add_ref(c, off, cs);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* Count the references of an L1 table and everything below it. */
static int
check_l1(struct check_ctx *c, uint64_t l1_off, uint64_t l1_size, bool active)
{
    struct qcow2_state *s = c->s;
    uint8_t *l1 = NULL, *l2 = NULL;
    uint64_t i;
    int r;

    if (l1_size > QCOW2_MAX_L1_BYTES / 8 || (l1_off & (s->cluster_size - 1))) {
        report(c, "ERROR: invalid L1 table (offset 0x%" PRIx64 ", %" PRIu64
               " entries)", l1_off, l1_size);
        c->res->corruptions++;
        return 0;
    }
    r = add_ref(c, l1_off, l1_size * 8);
    if (r == 0 && l1_size) {
        r = read_table(s, l1_off, l1_size * 8, &l1);
    }
    if (r == 0) {
        l2 = malloc(s->cluster_size);
        if (!l2) {
            r = -ENOMEM;
        }
    }
    for (i = 0; r == 0 && i < l1_size; i++) {
        uint64_t e = be64_load(l1 + i * 8), off = e & L1E_OFFSET_MASK;

        if (e & L1E_RESERVED_MASK) {
            report(c, "ERROR found L1 entry with reserved bits set: %" PRIx64,
                   e);
            c->res->corruptions++;
        }
        if (!off) {
            continue;
        }
        if (off & (s->cluster_size - 1)) {
            report(c, "ERROR l2_offset=%" PRIx64 ": Table is not cluster "
                   "aligned; L1 entry corrupted", off);
            c->res->corruptions++;
            continue;
        }
        r = add_ref(c, off, s->cluster_size);
        if (r == 0 && (off >> s->cluster_bits) < c->file_clusters) {
            r = hio_pread(s->f, l2, s->cluster_size, off);
            if (r == 0) {
                r = check_l2(c, l2, active);
            }
        }
    }
    free(l1);
    free(l2);
    return r;
}

static int
check_snapshots(struct check_ctx *c)
{
    struct qcow2_state *s = c->s;
    uint64_t pos = s->snapshots_offset, i;
    uint8_t e[40];
    int r;

    for (i = 0; i < s->nb_snapshots; i++) {
        uint64_t l1_off, l1_size, extra, idlen, namelen, len;

        r = hio_pread(s->f, e, sizeof(e), pos);
        if (r < 0) {
            return r;
        }
        l1_off = be64_load(e);
        l1_size = be32_load(e + 8);
        idlen = be16_load(e + 12);
        namelen = be16_load(e + 14);
        extra = be32_load(e + 36);
        if (extra > 1024) {
            report(c, "ERROR: snapshot %" PRIu64 " has too much extra data",
                   i);
            c->res->corruptions++;
            return 0;
        }
        len = align_up(40 + extra + idlen + namelen, 8);
        r = check_l1(c, l1_off, l1_size, false);
        if (r < 0) {
            return r;
        }
        pos += len;
    }
    return add_ref(c, s->snapshots_offset, pos - s->snapshots_offset);
}

/* Persistent dirty bitmaps: directory, bitmap tables and their data. */
static int
check_bitmaps(struct check_ctx *c)
{
    struct qcow2_state *s = c->s;
    uint64_t dir_off = 0, dir_size = 0, pos, j;
    uint8_t *dir = NULL;
    unsigned i;
    int r = 0;

    for (i = 0; i < s->nexts; i++) {
        if (s->exts[i].type == QCOW2_EXT_BITMAPS && s->exts[i].len >= 24) {
            dir_size = be64_load(s->exts[i].data + 8);
            dir_off = be64_load(s->exts[i].data + 16);
        }
    }
    if (!dir_off || !dir_size || dir_size > (64u << 20)) {
        return 0;
    }
    r = add_ref(c, dir_off, dir_size);
    if (r == 0) {
        r = read_table(s, dir_off, dir_size, &dir);
    }
    for (pos = 0; r == 0 && pos + 24 <= dir_size;) {
        uint64_t toff = be64_load(dir + pos);
        uint64_t tsize = be32_load(dir + pos + 8);
        uint64_t namelen = be16_load(dir + pos + 18);
        uint64_t extra = be32_load(dir + pos + 20);
        uint8_t *table = NULL;

        if (tsize > (64u << 20) / 8) {
            break;
        }
        r = add_ref(c, toff, tsize * 8);
        if (r == 0 && tsize) {
            r = read_table(s, toff, tsize * 8, &table);
        }
        for (j = 0; r == 0 && j < tsize; j++) {
            uint64_t off = be64_load(table + j * 8) & L1E_OFFSET_MASK;
            if (off) {
                r = add_ref(c, off, s->cluster_size);
            }
        }
        free(table);
        pos += align_up(24 + extra + namelen, 8);
    }
    free(dir);
    return r;
}

struct fix {
    uint64_t cluster;
    uint64_t value;
};

/* Count everything, then compare with the stored refcounts. */
static int
check_pass(struct qcow2_state *s, unsigned repair, struct check_ctx *c)
{
    struct vmc_check_result *res = c->res;
    uint64_t flen, i, n, highest = 0;
    struct fix *fixes = NULL;
    size_t nfixes = 0, capfixes = 0;
    int r;

    r = hio_length(s->f, &flen);
    if (r < 0) {
        return r;
    }
    c->file_clusters = DIV_ROUND_UP(flen, s->cluster_size);
    c->limit = c->file_clusters + 1;
    c->next_contiguous = 0;

    r = add_ref(c, 0, s->cluster_size);                  /* header */
    if (r == 0) {
        r = check_l1(c, s->l1_offset, s->l1_size, true);
    }
    if (r == 0) {
        r = add_ref(c, s->reftable_offset,
                    (uint64_t)s->reftable_clusters * s->cluster_size);
    }
    for (i = 0; r == 0 && i < s->reftable_entries; i++) {
        uint64_t e = s->reftable[i], off = e & REFT_OFFSET_MASK;
        if (e & REFT_RESERVED_MASK) {
            report(c, "ERROR reftable entry %" PRIu64 " has reserved bits "
                   "set", i);
            res->corruptions++;
        }
        if (off && (off & (s->cluster_size - 1))) {
            report(c, "ERROR refcount block %" PRIu64 " is not cluster "
                   "aligned; refcount table entry corrupted", i);
            res->corruptions++;
        } else if (off && (off >> s->cluster_bits) >= c->file_clusters) {
            report(c, "ERROR refcount block %" PRIu64 " is outside the "
                   "image", i);
            res->corruptions++;
        } else if (off) {
            r = add_ref(c, off, s->cluster_size);
        }
    }
    if (r == 0 && s->nb_snapshots) {
        r = check_snapshots(c);
    }
    if (r == 0) {
        r = check_bitmaps(c);
    }
    if (r < 0) {
        return r;
    }

    n = MAX(c->file_clusters, c->nrefs);
    for (i = 0; i < n; i++) {
        uint64_t stored = 0, want = i < c->nrefs ? c->refs[i] : 0;
        bool leaked, fixing;

        if (want) {
            highest = i;
        }
        if (i >= c->file_clusters && !want) {
            continue;
        }
        r = qcow2_refcount_get(s, i, &stored);
        if (r < 0) {
            report(c, "ERROR cannot read refcount of cluster %" PRIu64, i);
            res->check_errors++;
            r = 0;
            continue;
        }
        if (stored) {
            highest = MAX(highest, i);   /* leaked clusters count too */
        }
        if (stored == want) {
            continue;
        }
        leaked = stored > want;
        fixing = repair & (leaked ? VMC_REPAIR_LEAKS : VMC_REPAIR_ERRORS);
        report(c, "%s cluster %" PRIu64 " refcount=%" PRIu64
               " reference=%" PRIu64, fixing ? "Repairing" :
               leaked ? "Leaked" : "ERROR", i, stored, want);
        if (leaked) {
            res->leaks++;
        } else {
            res->corruptions++;
        }
        if (!fixing) {
            continue;
        }
        if (nfixes == capfixes) {
            size_t cap = capfixes ? capfixes * 2 : 64;
            struct fix *p = realloc(fixes, cap * sizeof(*p));
            if (!p) {
                free(fixes);
                return -ENOMEM;
            }
            fixes = p;
            capfixes = cap;
        }
        fixes[nfixes].cluster = i;
        fixes[nfixes].value = MIN(want, s->refcount_max);
        nfixes++;
        if (stored > want) {
            res->leaks_fixed++;
        } else {
            res->corruptions_fixed++;
        }
    }
    res->image_end_offset = (highest + 1) * s->cluster_size;
    res->total_clusters = DIV_ROUND_UP(s->img->size, s->cluster_size);

    /* Apply the fixes with every referenced cluster reserved. */
    s->reserved_refs = c->refs;
    s->reserved_len = c->nrefs;
    for (i = 0; r == 0 && i < nfixes; i++) {
        r = qcow2_refcount_set(s, fixes[i].cluster, fixes[i].value);
    }
    free(fixes);
    if (r == 0 && nfixes) {
        r = qcow2_refcount_flush_blocks(s);
        if (r == 0) {
            r = hio_sync(s->f);
        }
    }
    s->reserved_refs = NULL;
    s->reserved_len = 0;
    return r;
}

/* Does the COPIED flag of table entry @entry (pointing at host @off)
 * disagree with the cluster's stored refcount (*rc)? 1 and the corrected
 * entry in *fixed if so, 0 if not, -errno. */
static int
copied_mismatch(struct qcow2_state *s, uint64_t entry, uint64_t off,
                uint64_t *rc, uint64_t *fixed)
{
    int r = qcow2_refcount_get(s, off >> s->cluster_bits, rc);

    if (r == -EUCLEAN) {
        return 0;   /* a damaged refcount block: check_pass counted it */
    }
    if (r < 0) {
        return r;
    }
    *fixed = *rc == 1 ? entry | QCOW_OFLAG_COPIED : entry & ~QCOW_OFLAG_COPIED;
    return *fixed != entry;
}

/* Count a wrong COPIED flag, and its repair when @fix. */
static void
count_copied_error(struct check_ctx *c, bool fix)
{
    c->res->corruptions++;
    if (fix) {
        c->res->corruptions_fixed++;
    }
}

/* The COPIED flags of the data clusters of the L2 table at host @off,
 * read into @l2 (one cluster); with @fix, the table is rewritten when an
 * entry was wrong. */
static int
check_copied_l2(struct qcow2_state *s, struct check_ctx *c, bool fix,
                uint64_t off, uint8_t *l2)
{
    uint64_t j, rc = 0, fixed;
    bool changed = false;
    int r = hio_pread(s->f, l2, s->cluster_size, off);

    for (j = 0; r == 0 && j < s->l2_entries; j++) {
        uint8_t *p = l2 + j * s->l2_entry_size;
        uint64_t e = be64_load(p), doff = e & L2E_OFFSET_MASK;

        if ((e & QCOW_OFLAG_COMPRESSED) || !doff ||
            (doff & (s->cluster_size - 1))) {
            continue;
        }
        r = copied_mismatch(s, e, doff, &rc, &fixed);
        if (r <= 0) {
            continue;
        }
        r = 0;
        report(c, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
               " refcount=%" PRIu64, fix ? "Repairing" : "ERROR", e, rc);
        count_copied_error(c, fix);
        if (fix) {
            be64_store(p, fixed);
            changed = true;
        }
    }
    if (r == 0 && changed) {
        r = hio_pwrite(s->f, l2, s->cluster_size, off);
    }
    return r;
}

/* The COPIED flag of L1 entry @i; with @fix, the entry is rewritten on
 * disk when wrong. */
static int
check_copied_l1_entry(struct qcow2_state *s, struct check_ctx *c, bool fix,
                      uint64_t i)
{
    uint64_t e = s->l1[i], rc = 0, fixed;
    uint8_t be[8];
    int r = copied_mismatch(s, e, e & L1E_OFFSET_MASK, &rc, &fixed);

    if (r <= 0) {
        return r;
    }
    report(c, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu64
           " l1_entry=%" PRIx64 " refcount=%" PRIu64,
           fix ? "Repairing" : "ERROR", i, e, rc);
    count_copied_error(c, fix);
    if (!fix) {
        return 0;
    }
    s->l1[i] = fixed;
    s->meta_valid = false;
    be64_store(be, fixed);
    return hio_pwrite(s->f, be, 8, s->l1_offset + i * 8);
}

/* Verify (and with repair, fix) the COPIED flags of the active tables
 * against the stored refcounts. */
static int
check_copied(struct qcow2_state *s, struct check_ctx *c, unsigned repair)
{
    uint64_t cs = s->cluster_size, i;
    bool fix = (repair & VMC_REPAIR_ERRORS) != 0;
    uint8_t *l2;
    int r = 0;

    l2 = malloc(cs);
    if (!l2) {
        return -ENOMEM;
    }
    for (i = 0; r == 0 && i < s->l1_size; i++) {
        uint64_t off = s->l1[i] & L1E_OFFSET_MASK;

        if (!off || (off & (cs - 1)) || (off >> s->cluster_bits) >=
            c->file_clusters) {
            continue;
        }
        r = check_copied_l1_entry(s, c, fix, i);
        if (r == 0) {
            r = check_copied_l2(s, c, fix, off, l2);
        }
    }
    free(l2);
    if (r == 0 && fix) {
        r = hio_sync(s->f);
    }
    return r;
}

static int
run_check(struct qcow2_state *s, unsigned repair,
          struct vmc_check_result *res, vmc_check_report_fn rep, void *opq)
{
    struct check_ctx c = {
        .s = s, .res = res, .report = rep, .opaque = opq,
    };
    int r;

    memset(res, 0, sizeof(*res));
    r = check_pass(s, repair, &c);
    if (r == 0) {
        r = check_copied(s, &c, repair);
    }
    free(c.refs);
    return r;
}

/* Check counts the references to every cluster of the file (4 bytes
 * each): refuse a file whose count would pass QCOW2_CHECK_MAX_BYTES
 * rather than allocate it (a damaged pointer can make a small image a
 * huge sparse file). */
static int
check_budget(struct qcow2_state *s, struct vmc_error *err)
{
    uint64_t flen, clusters;
    int r = hio_length(s->f, &flen);

    if (r < 0) {
        return vmc_error_set(err, r, "cannot get the size of '%s': %s",
                             s->img->filename, strerror(-r));
    }
    clusters = DIV_ROUND_UP(flen, s->cluster_size) + 1;
    if (clusters <= QCOW2_CHECK_MAX_BYTES / sizeof(uint32_t)) {
        return 0;
    }
    return vmc_error_set(err, -EFBIG, "cannot check '%s': its %" PRIu64
                         " bytes of %" PRIu64 "-byte clusters need %" PRIu64
                         " MiB of reference counts, over the budget of "
                         "%llu MiB", s->img->filename, flen, s->cluster_size,
                         clusters * sizeof(uint32_t) >> 20,
                         QCOW2_CHECK_MAX_BYTES >> 20);
}

int
qcow2_check(struct vmc_image *img, unsigned repair,
            struct vmc_check_result *res, vmc_check_report_fn report_fn,
            void *opaque, struct vmc_error *err)
{
    struct qcow2_state *s = qcow2_s(img);
    struct vmc_check_result first;
    bool dirty = (s->incompat & (QCOW2_INCOMPAT_DIRTY |
                                 QCOW2_INCOMPAT_CORRUPT)) != 0;
    int r;

    r = check_budget(s, err);
    if (r < 0) {
        return r;
    }
    /* Check what is on disk, not what a cache holds. */
    r = qcow2_flush(img);
    if (r == 0) {
        qcow2_l2_cache_release(s);
        r = run_check(s, repair, &first, report_fn, opaque);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "check of '%s' could not complete: %s",
                             img->filename, strerror(-r));
    }
    if (!repair) {
        /* A dirty bit alone is no error: the refcounts just checked are
         * what a crash could have left wrong (QEMU reports the same). */
        *res = first;
        return 0;
    }
    if (dirty) {
        r = qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY |
                               QCOW2_INCOMPAT_CORRUPT, false);
        s->corrupt = false;
        s->corrupt_reason[0] = '\0';
        if (r < 0) {
            return vmc_error_set(err, r, "cannot clear the dirty/corrupt "
                                 "bits of '%s': %s", img->filename,
                                 strerror(-r));
        }
    }
    r = run_check(s, VMC_REPAIR_NONE, res, NULL, NULL);
    if (r < 0) {
        return vmc_error_set(err, r, "check of '%s' could not complete: %s",
                             img->filename, strerror(-r));
    }
    res->leaks_fixed = first.leaks_fixed;
    res->corruptions_fixed = first.corruptions_fixed;
    return 0;
}
