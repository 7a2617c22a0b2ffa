/*
 * chain-map.c - the merged read map of a read-only backing chain.
 *
 * Reading through a chain of depth d costs d lookups per request when
 * every layer is asked in turn. The layers below an image's top never
 * change while they have children (they are opened read-only and
 * share-locked, so no other process may write them either), so the answer
 * "which layer, at which host offset, serves guest unit u" can be resolved
 * once and kept. The map is built lazily, one region (4096 units: 2 MiB
 * of guest space with 512-byte units, 256 MiB with 64 KiB ones) at a
 * time, by asking each layer for its own allocation (resolve_region());
 * afterwards a read costs one array lookup and one pread whatever the
 * depth.
 *
 * Units that cannot be served by a plain pread (compressed clusters, units
 * straddling two runs) are marked SLOW and read through the layers as
 * before. The map belongs to the layer whose view it describes, so every
 * overlay of that layer in the process shares it.
 *
 * Entry layout (uint64_t):
 *   bits 62-63  kind: 0 unresolved, 1 zero, 2 data, 3 slow
 *   bits 48-61  layer index (0 = the mapped layer itself)
 *   bits  0-47  host offset / 512
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain-map.h"
#include "format/format.h"
#include "chain/seal-hook.h"
#include "util/util.h"

#define REGION_UNITS   4096ull      /* 32 KiB of entries per region */
#define MAP_MEM_BUDGET (64ull << 20)

enum { KIND_NONE, KIND_ZERO, KIND_DATA, KIND_SLOW };

#define E_KIND(e)  ((unsigned)((e) >> 62))
#define E_LAYER(e) ((unsigned)(((e) >> 48) & 0x3fff))
#define E_HOST(e)  (((e) & 0xffffffffffffull) << 9)
#define MK_ENTRY(kind, layer, host) \
    ((uint64_t)(kind) << 62 | (uint64_t)(layer) << 48 | ((host) >> 9))

static atomic_uint map_generation;

struct chain_map {
    pthread_mutex_t lock;
    struct vmc_image *base;        /* the layer whose view is mapped */
    struct vmc_image **layers;     /* base, its backing, ... */
    unsigned nlayers;
    struct vmc_image **sealed;     /* the sealed ones among them */
    unsigned nsealed;
    unsigned unit_bits;
    uint64_t size;
    uint64_t region_units;
    uint64_t nregions;
    uint64_t **regions;
    uint64_t mem;
    unsigned generation;
};

void
chain_map_invalidate_all(void)
{
    atomic_fetch_add(&map_generation, 1);
}

/* Smallest unit any layer can map separately. */
static unsigned
pick_unit_bits(struct vmc_image *base)
{
    uint64_t unit = 0;
    struct vmc_image *l;

    for (l = base; l; l = l->backing) {
        if (l->ops->format != VMC_FMT_RAW) {
            uint64_t g = l->ops->granularity(l);
            if (l->ops->subcluster_size) {
                g = l->ops->subcluster_size(l);
            }
            unit = unit ? MIN(unit, g) : g;
        }
    }
    if (!unit) {
        unit = 65536;   /* raw only: any unit works */
    }
    unit = MAX(unit, 512);
    return (unsigned)__builtin_ctzll(unit);
}

int
chain_map_new(struct chain_map **out, struct vmc_image *base)
{
    struct chain_map *m;
    struct vmc_image *l;
    unsigned n = 0;

    for (l = base; l; l = l->backing) {
        if (l->writable || n >= 0x3fff) {
            return -ENOTSUP;   /* a layer that may change: no map */
        }
        n++;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    m->layers = calloc(n, sizeof(*m->layers));
    m->sealed = calloc(n, sizeof(*m->sealed));
    if (!m->layers || !m->sealed) {
        free(m->layers);
        free(m->sealed);
        free(m);
        return -ENOMEM;
    }
    for (l = base, n = 0; l; l = l->backing) {
        m->layers[n++] = l;
        if (l->seal) {
            m->sealed[m->nsealed++] = l;   /* a seal never changes while
                                            * the layer is open */
        }
    }
    pthread_mutex_init(&m->lock, NULL);
    m->base = base;
    m->nlayers = n;
    m->unit_bits = pick_unit_bits(base);
    m->size = base->size;
    m->region_units = REGION_UNITS;
    m->nregions = DIV_ROUND_UP(DIV_ROUND_UP(m->size, 1ull << m->unit_bits),
                               m->region_units);
    m->regions = calloc(m->nregions ? m->nregions : 1, sizeof(*m->regions));
    if (!m->regions) {
        free(m->layers);
        free(m->sealed);
        free(m);
        return -ENOMEM;
    }
    m->generation = atomic_load(&map_generation);
    *out = m;
    return 0;
}

static void
drop_regions(struct chain_map *m)
{
    uint64_t i;

    for (i = 0; i < m->nregions; i++) {
        free(m->regions[i]);
        m->regions[i] = NULL;
    }
    m->mem = 0;
}

void
chain_map_free(struct chain_map *m)
{
    if (!m) {
        return;
    }
    drop_regions(m);
    free(m->regions);
    free(m->layers);
    free(m->sealed);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

bool
chain_map_is_current(const struct chain_map *m)
{
    return m->generation == atomic_load(&map_generation);
}

/* Entry for the units of one block-status run. */
static uint64_t
run_entry(struct chain_map *m, const struct vmc_block_status *bs,
          uint64_t run_start, uint64_t unit_start)
{
    unsigned li = bs->depth;

    if (!(bs->flags & VMC_BS_ALLOCATED) || li >= m->nlayers) {
        return MK_ENTRY(KIND_ZERO, 0, 0);
    }
    if (m->layers[li]->ops->format == VMC_FMT_RAW) {
        /* A raw layer defines everything: holes read as zeros. */
        return MK_ENTRY(KIND_DATA, li, unit_start);
    }
    if (bs->flags & VMC_BS_ZERO) {
        return MK_ENTRY(KIND_ZERO, 0, 0);
    }
    if ((bs->flags & (VMC_BS_DATA | VMC_BS_OFFSET)) ==
        (VMC_BS_DATA | VMC_BS_OFFSET) && !(bs->flags & VMC_BS_COMPRESSED)) {
        uint64_t host = bs->host_offset + (unit_start - run_start);
        if (!(host & 511) && host < (1ull << 57)) {
            return MK_ENTRY(KIND_DATA, li, host);
        }
    }
    return MK_ENTRY(KIND_SLOW, 0, 0);
}

/* Block status of layer @l alone (not its backing). */
static int
layer_status(struct vmc_image *l, uint64_t off, uint64_t len,
             struct vmc_block_status *bs)
{
    int r;

    if (l->ops->format == VMC_FMT_RAW) {
        /* A raw layer defines everything: holes read as zeros. */
        memset(bs, 0, sizeof(*bs));
        bs->length = len;
        bs->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_OFFSET;
        bs->host_offset = off;
        return 0;
    }
    image_lock(l);
    r = l->ops->block_status(l, off, len, bs);
    image_unlock(l);
    if (r == 0 && (bs->length == 0 || bs->length > len)) {
        r = -EIO;
    }
    return r;
}

/*
 * Give the still unresolved units of [rs, end) that layer @li defines
 * their entry (SLOW for a unit it defines only in part). *left counts the
 * unresolved units of the region.
 */
static int
resolve_layer(struct chain_map *m, unsigned li, uint64_t rs, uint64_t end,
              uint64_t *ents, uint64_t *left)
{
    uint64_t unit = 1ull << m->unit_bits, off = rs;

    while (off < end && *left) {
        struct vmc_block_status bs;
        uint64_t u, rend;
        int err = layer_status(m->layers[li], off, end - off, &bs);

        if (err < 0) {
            return err;
        }
        rend = off + bs.length;
        if (bs.flags & VMC_BS_ALLOCATED) {
            bs.depth = li;
            for (u = (off - rs) >> m->unit_bits;
                 u < m->region_units && rs + (u << m->unit_bits) < rend;
                 u++) {
                uint64_t us = rs + (u << m->unit_bits);
                uint64_t ue = MIN(us + unit, m->size);

                if (E_KIND(ents[u]) != KIND_NONE) {
                    continue;   /* an upper layer defines it */
                }
                ents[u] = us >= off && ue <= rend ? run_entry(m, &bs, off, us)
                                                  : MK_ENTRY(KIND_SLOW, 0, 0);
                (*left)--;
            }
        }
        off = rend;
    }
    return 0;
}

/*
 * Resolve region @r (called with m->lock held): each layer, top down, is
 * asked once for its own allocation over the region, and defines the
 * units no layer above it defines. A layer shorter than the region hides
 * everything below it past its end (reads there are zeros). Each layer is
 * walked once per region, so the cost is about (layers x allocation runs)
 * whatever the region size, not a whole-chain walk per run.
 */
static int
resolve_region(struct chain_map *m, uint64_t r)
{
    uint64_t unit = 1ull << m->unit_bits;
    uint64_t rs = r * m->region_units * unit;
    uint64_t re = MIN(m->size, rs + m->region_units * unit);
    uint64_t *ents, left, limit = re, u;
    unsigned li;

    if (m->mem + m->region_units * 8 > MAP_MEM_BUDGET) {
        drop_regions(m);
    }
    ents = calloc(m->region_units, sizeof(*ents));
    if (!ents) {
        return -ENOMEM;
    }
    left = DIV_ROUND_UP(re - rs, unit);
    for (li = 0; li < m->nlayers && left && rs < limit; li++) {
        struct vmc_image *l = m->layers[li];
        int err;

        if (l->size < limit) {
            /* Units across this layer's end: part of them reads zeros
             * whatever lies below; past it, all. */
            limit = MAX(l->size, rs);
            for (u = (limit - rs) >> m->unit_bits;
                 u < m->region_units && rs + (u << m->unit_bits) < re; u++) {
                if (E_KIND(ents[u]) == KIND_NONE) {
                    ents[u] = rs + (u << m->unit_bits) < limit ?
                              MK_ENTRY(KIND_SLOW, 0, 0) :
                              MK_ENTRY(KIND_ZERO, 0, 0);
                    left--;
                }
            }
        }
        err = resolve_layer(m, li, rs, MIN(limit, re), ents, &left);
        if (err < 0) {
            free(ents);
            return err;
        }
    }
    /* Defined by no layer: zeros. */
    for (u = 0; left && u < m->region_units && rs + (u << m->unit_bits) < re;
         u++) {
        if (E_KIND(ents[u]) == KIND_NONE) {
            ents[u] = MK_ENTRY(KIND_ZERO, 0, 0);
            left--;
        }
    }
    m->regions[r] = ents;
    m->mem += m->region_units * 8;
    return 0;
}

/* Look up the run of units starting at @off with one kind and, for data,
 * one layer and contiguous host offsets; *len is clipped to it. */
static int
lookup(struct chain_map *m, uint64_t off, uint64_t *len, uint64_t *entry)
{
    uint64_t unit = 1ull << m->unit_bits;
    uint64_t u = off >> m->unit_bits;
    uint64_t r = u / m->region_units, i = u % m->region_units;
    uint64_t e, n, in = off & (unit - 1);
    int err;

    pthread_mutex_lock(&m->lock);
    if (!m->regions[r] && (err = resolve_region(m, r)) < 0) {
        pthread_mutex_unlock(&m->lock);
        return err;
    }
    e = m->regions[r][i];
    n = unit - in;
    while (n < *len && ++i < m->region_units) {
        uint64_t e2 = m->regions[r][i];
        if (E_KIND(e2) != E_KIND(e) || E_KIND(e) == KIND_SLOW ||
            (E_KIND(e) == KIND_DATA &&
             (E_LAYER(e2) != E_LAYER(e) ||
              E_HOST(e2) != E_HOST(e) + (n + in)))) {
            break;
        }
        n += unit;
    }
    pthread_mutex_unlock(&m->lock);
    *len = MIN(*len, n);
    *entry = e;
    return 0;
}

/* Read the start of [@off, @off + *@n) from the one place the map says
 * it lives (zeros, a layer's host cluster, or the base); *@n is cut to
 * the extent's end. */
static int
read_extent(struct chain_map *m, uint8_t *p, uint64_t off, uint64_t *n)
{
    uint64_t e;
    int r = lookup(m, off, n, &e);

    if (r < 0) {
        return r;
    }
    switch (E_KIND(e)) {
    case KIND_ZERO:
        memset(p, 0, *n);
        return 0;
    case KIND_DATA: {
        uint64_t in = off & ((1ull << m->unit_bits) - 1);
        return hio_pread(m->layers[E_LAYER(e)]->file, p, *n, E_HOST(e) + in);
    }
    default:
        return vmc_image_read(m->base, p, off, *n);
    }
}

int
chain_map_read(struct chain_map *m, void *buf, uint64_t off, size_t len)
{
    uint8_t *p = buf;
    uint64_t n;
    unsigned i;
    int r;

    /* Sealed layers are verified on first touch, as on the layered path:
     * a layer's view at these offsets is what the map serves. */
    for (i = 0; i < m->nsealed; i++) {
        struct vmc_image *l = m->sealed[i];
        if (off < l->size) {
            r = seal_verify(l, off, MIN((uint64_t)len, l->size - off));
            if (r < 0) {
                return r;
            }
        }
    }

    for (n = len; len; p += n, off += n, len -= n, n = len) {
        r = read_extent(m, p, off, &n);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}
