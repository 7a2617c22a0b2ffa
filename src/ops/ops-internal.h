/*
 * ops-internal.h - helpers shared by the operations in src/ops/: small
 * arithmetic, zero detection and progress accounting. The operations use
 * the public API (vmclone.h) only.
 */
#ifndef VMC_OPS_INTERNAL_H
#define VMC_OPS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmclone.h"
#include "vmclone-ops.h"
#include "engine.h"

/* Largest request the operations issue (qemu-img's IO_BUF_SIZE). */
#define OPS_BUF_SIZE (2u * 1024 * 1024)

/* Granularity of compare and zero detection (a disk sector). */
#define OPS_SECTOR 512u

static inline uint64_t
ops_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t
ops_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* @a must be a power of two. */
static inline uint64_t
ops_align_down(uint64_t v, uint64_t a)
{
    return v & ~(a - 1);
}

static inline uint64_t
ops_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static inline bool
ops_is_power_of_2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* Length of the run at the start of @buf of 512-byte sectors that are
 * all zero (*@zero set) or all contain some non-zero byte (*@zero
 * cleared); at least one sector, or @len if shorter. */
size_t ops_sector_run(const uint8_t *buf, size_t len, bool *zero);

/* Progress accounting: report @done/@total to @fn when set. */
struct ops_progress {
    vmc_progress_fn fn;
    void *opaque;
    uint64_t total;
    uint64_t done;
};

void ops_progress_init(struct ops_progress *p, vmc_progress_fn fn,
                       void *opaque, uint64_t total);
void ops_progress_add(struct ops_progress *p, uint64_t n);
void ops_progress_finish(struct ops_progress *p);

#endif /* VMC_OPS_INTERNAL_H */
