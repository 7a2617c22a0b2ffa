/*
 * test-qemu-damaged.c - issue 9 finding 16: on these damaged images we
 * behave as QEMU does.
 *   1. a zero-flagged L2 entry whose host offset is not cluster aligned:
 *      reads fail (we used to read zeros);
 *   2. a header extension (here the end marker) that runs past the end
 *      of the header area: refused at open;
 *   3. a misaligned snapshot-table offset with 0 snapshots: refused;
 *   4. extended L2 entries with bit 0 of the standard descriptor set:
 *      the bit is ignored (QEMU iotest 271), reads work;
 *   5. check of an image whose dirty bit is set but whose refcounts are
 *      right: no corruption reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

static char path[] = "/tmp/vmc-qemu-damaged-XXXXXX";

static uint64_t
get_be(int fd, off_t off, int n)
{
    uint8_t b[8];
    uint64_t v = 0;
    int i;

    if (pread(fd, b, (size_t)n, off) != n) {
        FAIL("pread at %lld", (long long)off);
    }
    for (i = 0; i < n; i++) {
        v = v << 8 | b[i];
    }
    return v;
}

static void
put_be(int fd, off_t off, int n, uint64_t v)
{
    uint8_t b[8];
    int i;

    for (i = n - 1; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
    if (pwrite(fd, b, (size_t)n, off) != n) {
        FAIL("pwrite at %lld", (long long)off);
    }
}

/* A fresh 4 MiB image with cluster 0 written with 0x5a; returns an fd
 * on it for damaging, and the host offset of its first L2 table. */
static int
fresh(unsigned cluster_size, bool ext_l2, uint64_t *l2_off)
{
    struct vmc_create_opts o;
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR };
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    uint8_t *buf = malloc(cluster_size);
    int fd;

    vmc_create_opts_init(&o);
    o.size = 4u << 20;
    o.cluster_size = cluster_size;
    o.extended_l2 = ext_l2;
    if (!buf || vmc_image_create(path, &o, &err) < 0 ||
        vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("create/open: %s", err.msg);
    }
    memset(buf, 0x5a, cluster_size);
    CHECK_EQ(vmc_image_write(img, buf, 0, cluster_size, 0), 0);
    CHECK_EQ(vmc_image_close(img), 0);
    free(buf);
    fd = open(path, O_RDWR);
    if (fd < 0) {
        FAIL("open %s", path);
    }
    *l2_off = get_be(fd, (off_t)get_be(fd, 40, 8), 8) & 0x00fffffffffffe00ull;
    return fd;
}

static int
try_open(unsigned flags, struct vmc_image **img, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2, .flags = flags };

    *img = NULL;
    return vmc_image_open(img, path, &oo, err);
}

int
main(void)
{
    struct vmc_error err = { 0 };
    struct vmc_check_result res;
    struct vmc_image *img;
    uint64_t l2, data, pos;
    uint8_t buf[4096];
    int fd = mkstemp(path);

    if (fd < 0) {
        FAIL("mkstemp");
    }
    close(fd);

    /* 1. zero flag with an unaligned host offset */
    fd = fresh(65536, false, &l2);
    data = get_be(fd, (off_t)l2, 8) & 0x00fffffffffffe00ull;
    put_be(fd, (off_t)l2, 8, (1ull << 63) | (data + 512) | 1);
    close(fd);
    CHECK_EQ(try_open(0, &img, &err), 0);
    if (img) {
        CHECK_MSG(vmc_image_read(img, buf, 0, sizeof(buf)) < 0,
                  "zero cluster at an unaligned offset read as zeros");
        vmc_image_close(img);
    }

    /* 2. the end marker of the extensions runs past the backing name */
    fd = fresh(65536, false, &l2);
    pos = get_be(fd, 100, 4);                  /* header_length */
    while (get_be(fd, (off_t)pos, 4) != 0) {   /* walk to the end marker */
        pos += 8 + ((get_be(fd, (off_t)pos + 4, 4) + 7) & ~7ull);
    }
    put_be(fd, 8, 8, pos + 4);                 /* backing name at +4 */
    put_be(fd, 16, 4, 4);
    if (pwrite(fd, "base", 4, (off_t)pos + 4) != 4) {
        FAIL("pwrite");
    }
    close(fd);
    CHECK_MSG(try_open(VMC_OPEN_NO_BACKING, &img, &err) < 0,
              "extension running past the header area accepted");
    if (img) {
        vmc_image_close(img);
    }

    /* 3. misaligned snapshot table offset, no snapshots */
    fd = fresh(65536, false, &l2);
    put_be(fd, 64, 8, 0x10200);
    close(fd);
    CHECK_MSG(try_open(0, &img, &err) < 0,
              "misaligned snapshot table offset accepted");
    if (img) {
        vmc_image_close(img);
    }

    /* 4. extended L2: bit 0 of the standard descriptor is ignored */
    fd = fresh(131072, true, &l2);
    put_be(fd, (off_t)l2, 8, get_be(fd, (off_t)l2, 8) | 1);
    close(fd);
    CHECK_EQ(try_open(0, &img, &err), 0);
    if (img) {
        int r = vmc_image_read(img, buf, 0, sizeof(buf));
        CHECK_MSG(r == 0 && buf[0] == 0x5a && buf[sizeof(buf) - 1] == 0x5a,
                  "extended L2 entry with bit 0 set: read gave %d", r);
        vmc_image_close(img);
    }

    /* 5. dirty bit, right refcounts: check finds nothing */
    fd = fresh(65536, false, &l2);
    put_be(fd, 72, 8, get_be(fd, 72, 8) | 1);
    close(fd);
    CHECK_EQ(try_open(VMC_OPEN_CHECK, &img, &err), 0);
    if (img) {
        CHECK_EQ(vmc_image_check(img, 0, &res, NULL, NULL, &err), 0);
        CHECK_EQ(res.corruptions, 0);
        CHECK_EQ(res.leaks, 0);
        vmc_image_close(img);
    }

    unlink(path);
    return harness_exit("qemu-damaged");
}
