/*
 * compare.c - compare the guest views of two images (qemu-img compare).
 *
 * Both chains are walked with whole-chain block status; ranges that are
 * zero in both are skipped, ranges allocated in one image only must read
 * as zeros in it, and the rest is read and compared. Mismatches are
 * reported at the first differing 512-byte sector, like qemu-img.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops-internal.h"

/* Flags that must agree in strict mode. */
#define STRICT_FLAGS (VMC_BS_ALLOCATED | VMC_BS_ZERO | VMC_BS_DATA)

struct cmp_ctx {
    struct vmc_compare_result *res;
    struct vmc_error *err;
    struct ops_progress progress;
    uint8_t *buf1;
    uint8_t *buf2;
};

static int
status_of(struct cmp_ctx *c, struct vmc_image *img, uint64_t off,
          uint64_t len, struct vmc_block_status *bs)
{
    int r = vmc_image_block_status(img, off, len, true, bs);

    if (r == 0 && (bs->length == 0 || bs->length > len)) {
        r = -EIO;
    }
    if (r < 0) {
        c->res->failure = VMC_COMPARE_FAIL_STATUS;
        return vmc_error_set(c->err, r, "sector allocation test failed for "
                             "'%s' at offset %llu: %s",
                             vmc_image_filename(img),
                             (unsigned long long)off, strerror(-r));
    }
    return 0;
}

static int
read_of(struct cmp_ctx *c, struct vmc_image *img, uint8_t *buf, uint64_t off,
        size_t len)
{
    int r = vmc_image_read(img, buf, off, len);

    if (r < 0) {
        c->res->failure = VMC_COMPARE_FAIL_READ;
        return vmc_error_set(c->err, r, "error while reading offset %llu of "
                             "'%s': %s", (unsigned long long)off,
                             vmc_image_filename(img), strerror(-r));
    }
    return 0;
}

static void
mismatch(struct cmp_ctx *c, enum vmc_compare_status st, uint64_t off)
{
    c->res->status = st;
    c->res->offset = off;
}

/* Record a mismatch unless @img reads as zeros over [off, off+len). */
static int
check_zero(struct cmp_ctx *c, struct vmc_image *img, uint64_t off,
           size_t len)
{
    size_t pos = 0;
    bool zero;
    int r = read_of(c, img, c->buf1, off, len);

    if (r < 0) {
        return r;
    }
    while (pos < len) {
        size_t n = ops_sector_run(c->buf1 + pos, len - pos, &zero);

        if (!zero) {
            mismatch(c, VMC_COMPARE_CONTENT_MISMATCH, off + pos);
            return 0;
        }
        pos += n;
    }
    return 0;
}

/* Record a mismatch unless both images hold the same bytes there. */
static int
check_equal(struct cmp_ctx *c, struct vmc_image *a, struct vmc_image *b,
            uint64_t off, size_t len)
{
    size_t pos;
    int r = read_of(c, a, c->buf1, off, len);

    if (r == 0) {
        r = read_of(c, b, c->buf2, off, len);
    }
    if (r < 0) {
        return r;
    }
    for (pos = 0; pos < len; pos += OPS_SECTOR) {
        size_t n = ops_min(OPS_SECTOR, len - pos);

        if (memcmp(c->buf1 + pos, c->buf2 + pos, n)) {
            mismatch(c, VMC_COMPARE_CONTENT_MISMATCH, off + pos);
            return 0;
        }
    }
    return 0;
}

/* Compare the common part [0, size). */
static int
compare_common(struct cmp_ctx *c, struct vmc_image *a, struct vmc_image *b,
               uint64_t size, bool strict)
{
    struct vmc_block_status s1, s2;
    uint64_t off = 0;
    int r;

    while (off < size && c->res->status == VMC_COMPARE_IDENTICAL) {
        bool alloc1, alloc2;
        uint64_t chunk;

        r = status_of(c, a, off, size - off, &s1);
        if (r == 0) {
            r = status_of(c, b, off, size - off, &s2);
        }
        if (r < 0) {
            return r;
        }
        chunk = ops_min(s1.length, s2.length);
        alloc1 = (s1.flags & VMC_BS_ALLOCATED) != 0;
        alloc2 = (s2.flags & VMC_BS_ALLOCATED) != 0;
        if (strict &&
            (s1.flags & STRICT_FLAGS) != (s2.flags & STRICT_FLAGS)) {
            mismatch(c, VMC_COMPARE_STATUS_MISMATCH, off);
            return 0;
        }
        if ((s1.flags & VMC_BS_ZERO) && (s2.flags & VMC_BS_ZERO)) {
            /* both read as zeros */
        } else if (alloc1 && alloc2) {
            chunk = ops_min(chunk, OPS_BUF_SIZE);
            r = check_equal(c, a, b, off, chunk);
        } else if (alloc1 || alloc2) {
            chunk = ops_min(chunk, OPS_BUF_SIZE);
            r = check_zero(c, alloc1 ? a : b, off, chunk);
        }
        if (r < 0) {
            return r;
        }
        off += chunk;
        ops_progress_add(&c->progress, chunk);
    }
    return 0;
}

/* The larger image must read as zeros over [from, its end). */
static int
compare_tail(struct cmp_ctx *c, struct vmc_image *img, uint64_t from)
{
    struct vmc_block_status bs;
    uint64_t size = vmc_image_size(img);
    uint64_t off = from;
    int r;

    while (off < size && c->res->status == VMC_COMPARE_IDENTICAL) {
        uint64_t chunk;

        r = status_of(c, img, off, size - off, &bs);
        if (r < 0) {
            return r;
        }
        chunk = bs.length;
        if ((bs.flags & VMC_BS_ALLOCATED) && !(bs.flags & VMC_BS_ZERO)) {
            chunk = ops_min(chunk, OPS_BUF_SIZE);
            r = check_zero(c, img, off, chunk);
            if (r < 0) {
                return r;
            }
        }
        off += chunk;
        ops_progress_add(&c->progress, chunk);
    }
    return 0;
}

int
vmc_compare(struct vmc_image *a, struct vmc_image *b,
            const struct vmc_compare_opts *o,
            struct vmc_compare_result *res, struct vmc_error *err)
{
    static const struct vmc_compare_opts defaults;
    struct cmp_ctx c = { .res = res, .err = err };
    uint64_t size_a = vmc_image_size(a);
    uint64_t size_b = vmc_image_size(b);
    int r;

    if (!o) {
        o = &defaults;
    }
    memset(res, 0, sizeof(*res));
    ops_progress_init(&c.progress, o->progress, o->opaque,
                      ops_max(size_a, size_b));
    if (o->strict && size_a != size_b) {
        mismatch(&c, VMC_COMPARE_SIZE_MISMATCH, 0);
        return 0;
    }
    c.buf1 = malloc(OPS_BUF_SIZE);
    c.buf2 = malloc(OPS_BUF_SIZE);
    if (!c.buf1 || !c.buf2) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        res->failure = VMC_COMPARE_FAIL_READ;
        goto out;
    }
    r = compare_common(&c, a, b, ops_min(size_a, size_b), o->strict);
    if (r < 0 || res->status != VMC_COMPARE_IDENTICAL) {
        goto out;
    }
    if (size_a != size_b) {
        res->size_warning = true;
        r = compare_tail(&c, size_a > size_b ? a : b,
                         ops_min(size_a, size_b));
        if (r < 0 || res->status != VMC_COMPARE_IDENTICAL) {
            goto out;
        }
    }
    ops_progress_finish(&c.progress);
out:
    free(c.buf1);
    free(c.buf2);
    return r;
}
