/*
 * test-threads.c - concurrent requests on one image (what an NBD server
 * does): several threads write, zero, read and flush disjoint stripes of
 * one linked clone at once while readers scan the whole disk; every
 * thread checks what it reads, and the result is verified after reopen.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

#define SIZE    (32u << 20)
#define THREADS 4
#define STRIPE  (SIZE / THREADS)
#define OPS     1500

static struct vmc_image *img;
static uint8_t *shadow;      /* each writer owns its stripe of it */

static uint64_t
next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *
writer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (id + 1), base = id * STRIPE;
    uint8_t *buf = malloc(256 << 10), *rbuf = malloc(256 << 10);
    int i;

    for (i = 0; i < OPS; i++) {
        uint64_t off = base + next(&seed) % STRIPE;
        uint64_t len = 1 + next(&seed) % (256 << 10);
        unsigned kind = next(&seed) % 8;

        if (off + len > base + STRIPE) {
            len = base + STRIPE - off;
        }
        if (kind < 4) {
            memset(buf, (int)(id * 16 + i % 16 + 1), len);
            CHECK_MSG(vmc_image_write(img, buf, off, len, 0) == 0,
                      "write at %" PRIu64, off);
            memcpy(shadow + off, buf, len);
        } else if (kind == 4) {
            CHECK_MSG(vmc_image_write_zeroes(img, off, len,
                                             VMC_WRITE_MAY_UNMAP) == 0,
                      "write_zeroes at %" PRIu64, off);
            memset(shadow + off, 0, len);
        } else if (kind == 5) {
            CHECK_MSG(vmc_image_flush(img) == 0, "flush at %" PRIu64, off);
        } else {
            if (vmc_image_read(img, rbuf, off, len)) {
                CHECK_MSG(false, "read at %" PRIu64, off);
            } else {
                CHECK_MSG(memcmp(rbuf, shadow + off, len) == 0,
                          "read back differs at %" PRIu64, off);
            }
        }
    }
    free(buf);
    free(rbuf);
    return NULL;
}

static atomic_bool stop;

static void *
scanner(void *arg)
{
    uint8_t *buf = malloc(1 << 20);
    uint64_t off = 0;

    (void)arg;
    while (!atomic_load(&stop)) {
        struct vmc_block_status bs;
        CHECK_MSG(vmc_image_read(img, buf, off, 1 << 20) == 0,
                  "scan read at %" PRIu64, off);
        CHECK_MSG(vmc_image_block_status(img, off, 1 << 20, true, &bs) == 0,
                  "block status at %" PRIu64, off);
        off = (off + (1 << 20)) % SIZE;
    }
    free(buf);
    return NULL;
}

int
main(void)
{
    char dir[] = "/tmp/vmc-threadsXXXXXX", base[64], top[64];
    struct vmc_create_opts o;
    struct vmc_open_opts oo = { .flags = VMC_OPEN_RDWR };
    struct vmc_error err = { 0 };
    pthread_t w[THREADS], sc[2];
    uint8_t *all;
    uintptr_t i;

    if (!mkdtemp(dir)) {
        FAIL("mkdtemp %s: %m", dir);
    }
    snprintf(base, sizeof(base), "%s/base.qcow2", dir);
    snprintf(top, sizeof(top), "%s/top.qcow2", dir);
    shadow = malloc(SIZE);
    all = malloc(SIZE);
    memset(shadow, 0x5b, SIZE);

    vmc_create_opts_init(&o);
    o.size = SIZE;
    if (vmc_image_create(base, &o, &err) ||
        vmc_image_open(&img, base, &oo, &err) ||
        vmc_image_write(img, shadow, 0, SIZE, 0) || vmc_image_close(img)) {
        FAIL("setup: %s", err.msg);
    }
    vmc_create_opts_init(&o);
    o.backing_file = "base.qcow2";
    o.backing_format = VMC_FMT_QCOW2;
    o.extended_l2 = true;
    o.cluster_size = 131072;
    if (vmc_image_create(top, &o, &err) ||
        vmc_image_open(&img, top, &oo, &err)) {
        FAIL("setup: %s", err.msg);
    }
    for (i = 0; i < 2; i++) {
        pthread_create(&sc[i], NULL, scanner, NULL);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_create(&w[i], NULL, writer, (void *)i);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(w[i], NULL);
    }
    atomic_store(&stop, true);
    for (i = 0; i < 2; i++) {
        pthread_join(sc[i], NULL);
    }
    CHECK_EQ(vmc_image_close(img), 0);
    oo.flags = 0;
    if (vmc_image_open(&img, top, &oo, &err) ||
        vmc_image_read(img, all, 0, SIZE)) {
        CHECK_MSG(false, "reopen: %s", err.msg);
    } else {
        CHECK_MSG(memcmp(all, shadow, SIZE) == 0,
                  "content after reopen differs");
    }
    vmc_image_close(img);
    if (getenv("KEEP_DIR")) {
        printf("%s\n", top);
    } else {
        unlink(top);
        unlink(base);
        rmdir(dir);
    }
    free(shadow);
    free(all);
    return harness_exit("threads");
}
