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

#define SIZE    (32u << 20)
#define THREADS 4
#define STRIPE  (SIZE / THREADS)
#define OPS     1500

static struct vmc_image *img;
static uint8_t *shadow;      /* each writer owns its stripe of it */
static atomic_int failures;

static void
fail(const char *what, uint64_t off)
{
    fprintf(stderr, "FAIL: %s at %" PRIu64 "\n", what, off);
    atomic_fetch_add(&failures, 1);
}

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
            if (vmc_image_write(img, buf, off, len, 0)) {
                fail("write", off);
            }
            memcpy(shadow + off, buf, len);
        } else if (kind == 4) {
            if (vmc_image_write_zeroes(img, off, len, VMC_WRITE_MAY_UNMAP)) {
                fail("write_zeroes", off);
            }
            memset(shadow + off, 0, len);
        } else if (kind == 5) {
            if (vmc_image_flush(img)) {
                fail("flush", off);
            }
        } else {
            if (vmc_image_read(img, rbuf, off, len)) {
                fail("read", off);
            } else if (memcmp(rbuf, shadow + off, len)) {
                fail("read back differs", off);
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
        if (vmc_image_read(img, buf, off, 1 << 20)) {
            fail("scan read", off);
        }
        if (vmc_image_block_status(img, off, 1 << 20, true, &bs)) {
            fail("block status", off);
        }
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
        return 1;
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
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    vmc_create_opts_init(&o);
    o.backing_file = "base.qcow2";
    o.backing_format = VMC_FMT_QCOW2;
    o.extended_l2 = true;
    o.cluster_size = 131072;
    if (vmc_image_create(top, &o, &err) ||
        vmc_image_open(&img, top, &oo, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
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
    if (vmc_image_close(img)) {
        fail("close", 0);
    }
    oo.flags = 0;
    if (vmc_image_open(&img, top, &oo, &err) ||
        vmc_image_read(img, all, 0, SIZE)) {
        fail("reopen", 0);
    } else if (memcmp(all, shadow, SIZE)) {
        fail("content after reopen differs", 0);
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
    printf("threads: %s\n", atomic_load(&failures) ? "FAIL" : "ok");
    return atomic_load(&failures) ? 1 : 0;
}
