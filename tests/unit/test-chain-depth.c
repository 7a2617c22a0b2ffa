/*
 * test-chain-depth.c - reads through deep, mixed backing chains.
 *
 * Builds a chain of N layers (a raw base, then qcow2 layers with cluster
 * sizes from 512 B to 2 MiB, some with extended L2 entries, some shorter
 * than the next), writing random data, zero writes and discards into each
 * layer while it is the top, mirrored into an in-memory shadow of the
 * guest view. Then opens the top (which reads through the merged chain
 * map) and compares random reads and the whole view with the shadow;
 * also after a commit-style reopen of a middle layer, which must stop the
 * map from being trusted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

#define SIZE (24u << 20)

static uint64_t rng = 42;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void
layer_io(struct vmc_image *img, uint8_t *shadow, uint64_t size, int ops)
{
    uint8_t *buf = malloc(1 << 20);
    int i;

    for (i = 0; i < ops; i++) {
        uint64_t off = rnd() % size;
        uint64_t len = 1 + rnd() % (1 << 19);
        unsigned kind = rnd() % 4;
        uint64_t k;

        if (off + len > size) {
            len = size - off;
        }
        if (kind <= 1) {
            for (k = 0; k < len; k++) {
                buf[k] = (uint8_t)(rnd() | 1);
            }
            CHECK_MSG(vmc_image_write(img, buf, off, len, 0) == 0, "write");
            memcpy(shadow + off, buf, len);
        } else if (kind == 2) {
            CHECK_MSG(vmc_image_write_zeroes(img, off, len,
                                             rnd() % 2 ? VMC_WRITE_MAY_UNMAP
                                                       : 0) == 0,
                      "write_zeroes");
            memset(shadow + off, 0, len);
        } else {
            /* discard: adopt whatever the engine reads afterwards */
            CHECK_MSG(vmc_image_discard(img, off, len) == 0, "discard");
            CHECK_MSG(vmc_image_read(img, shadow + off, off, len) == 0, "read");
        }
    }
    free(buf);
}

int
main(int argc, char **argv)
{
    static const struct { unsigned cs; bool extl2; uint64_t size; } cfg[] = {
        { 512, false, SIZE - (4u << 20) },
        { 65536, false, SIZE },
        { 131072, true, SIZE },
        { 2u << 20, false, SIZE - (2u << 20) },
        { 16384, true, SIZE },
        { 4096, false, SIZE },
        { 65536, true, SIZE },
    };
    char dir[] = "/tmp/vmc-depthXXXXXX";
    char path[64][256];
    uint8_t *shadow = calloc(1, SIZE), *buf = malloc(SIZE);
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    struct vmc_open_opts oo = { .format = VMC_FMT_AUTO };
    unsigned layers = argc > 1 ? (unsigned)atoi(argv[1]) : 20, i;
    uint64_t size = SIZE - (6u << 20), k;
    char name[32];

    if (layers < 2 || layers > 64) {
        FAIL("layers must be 2..64, not %u", layers);
    }
    if (!mkdtemp(dir)) {
        FAIL("mkdtemp %s: %m", dir);
    }
    /* Raw base. */
    snprintf(path[0], sizeof(path[0]), "%s/l0.raw", dir);
    {
        struct vmc_create_opts o;
        vmc_create_opts_init(&o);
        o.format = VMC_FMT_RAW;
        o.size = size;
        CHECK_MSG(vmc_image_create(path[0], &o, &err) == 0, "%s", err.msg);
        oo.flags = VMC_OPEN_RDWR;
        CHECK_MSG(vmc_image_open(&img, path[0], &oo, &err) == 0, "%s", err.msg);
        layer_io(img, shadow, size, 30);
        vmc_image_close(img);
    }
    for (i = 1; i < layers; i++) {
        struct vmc_create_opts o;
        uint64_t lsize = cfg[i % 7].size;

        vmc_create_opts_init(&o);
        o.size = lsize;
        o.cluster_size = cfg[i % 7].cs;
        o.extended_l2 = cfg[i % 7].extl2;
        o.backing_file = strrchr(path[i - 1], '/') + 1;
        o.backing_format = i == 1 ? VMC_FMT_RAW : VMC_FMT_QCOW2;
        snprintf(path[i], sizeof(path[i]), "%s/l%u.qcow2", dir, i);
        CHECK_MSG(vmc_image_create(path[i], &o, &err) == 0, "%s", err.msg);
        /* A shorter layer hides nothing: bytes past a backing file's end
         * read as zeros in the overlay. */
        if (lsize > size) {
            memset(shadow + size, 0, lsize - size);
        }
        size = lsize;
        oo.flags = VMC_OPEN_RDWR;
        CHECK_MSG(vmc_image_open(&img, path[i], &oo, &err) == 0, "%s", err.msg);
        if (i % 3 != 0) {
            layer_io(img, shadow, size, 12);
        }
        CHECK_MSG(vmc_image_close(img) == 0, "close");
    }
    oo.flags = 0;
    CHECK_MSG(vmc_image_open(&img, path[layers - 1], &oo, &err) == 0, "%s",
              err.msg);
    for (i = 0; i < 2000; i++) {
        uint64_t off = rnd() % size, len = 1 + rnd() % 200000;
        if (off + len > size) {
            len = size - off;
        }
        CHECK_MSG(vmc_image_read(img, buf, off, len) == 0, "read");
        if (memcmp(buf, shadow + off, len)) {
            CHECK_MSG(0, "random read at %" PRIu64 "+%" PRIu64 " differs",
                      off, len);
            break;
        }
    }
    /* A second chain over the same files shares the backing layers (and
     * so their caches and chain maps). */
    {
        struct vmc_image *img2 = NULL;
        CHECK_MSG(vmc_image_open(&img2, path[layers - 2], &oo, &err) == 0,
                  "%s", err.msg);
        if (img2) {
            CHECK_MSG(vmc_image_backing(img2) ==
                      vmc_image_backing(vmc_image_backing(img)),
                      "backing layers of two chains are not shared");
            CHECK_MSG(vmc_image_read(img2, buf, 0, vmc_image_size(img2)) == 0,
                      "read second chain");
            CHECK_MSG(vmc_image_close(img2) == 0, "close second chain");
        }
    }
    CHECK_MSG(vmc_image_read(img, buf, 0, size) == 0, "read all");
    for (k = 0; k < size && buf[k] == shadow[k]; k++) {
    }
    CHECK_MSG(k == size, "whole view differs at %" PRIu64, k);

    /* Reopening a middle layer read-write (as commit does) must stop the
     * chain map from being trusted; writes there then show through. */
    {
        struct vmc_image *mid = vmc_image_backing(vmc_image_backing(img));
        uint8_t pat[4096];
        struct vmc_block_status bs = { 0 };
        uint64_t off = 0;
        int tries;

        /* An offset served below `mid` (a write there allocates). */
        for (tries = 0; tries < 100000; tries++) {
            off = 4096 * (rnd() % (vmc_image_size(mid) / 4096));
            if (off + 4096 <= size &&
                vmc_image_block_status(img, off, 4096, true, &bs) == 0 &&
                bs.depth >= 3 && bs.length >= 4096) {
                break;
            }
        }
        CHECK_MSG(tries < 100000, "no offset served below the third layer");
        /* Make sure the map has resolved it before the layer changes. */
        CHECK_MSG(vmc_image_read(img, buf, off, 4096) == 0, "read");
        memset(pat, 0x5a, sizeof(pat));
        if (vmc_image_reopen_rw(mid, &err) == 0 &&
            vmc_image_write(mid, pat, off, sizeof(pat), 0) == 0) {
            CHECK_MSG(vmc_image_read(img, buf, off, 4096) == 0, "read");
            CHECK_MSG(memcmp(buf, pat, 4096) == 0,
                      "write to a reopened layer not visible through the "
                      "top: stale chain map");
        } else {
            CHECK_MSG(0, "reopen_rw: %s", err.msg);
        }
    }
    vmc_image_close(img);

    for (i = 0; i < layers; i++) {
        unlink(path[i]);
    }
    rmdir(dir);
    free(shadow);
    free(buf);
    snprintf(name, sizeof(name), "%u layers", layers);
    return harness_exit(name);
}
