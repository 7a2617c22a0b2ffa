/*
 * test-last-error.c - vmc_image_last_error(): a layer found corrupt keeps
 * its first reason and the host offset of the damaged structure, and the
 * reader gets them (not a bare -EUCLEAN) after a failed read or write.
 *
 * Builds a qcow2 image with one data cluster, damages its L2 entries at
 * known host offsets (a data offset that is not cluster aligned), then
 * reads and writes through the public API.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

#define CS (64u << 10)

static uint64_t
be64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Make L2 entries 0 and 1 of the image at @path point at unaligned data
 * offsets; returns the host offset of the L2 table. */
static uint64_t
damage_l2(const char *path)
{
    uint8_t b[8];
    uint64_t l1_off, l2_off, data;
    int fd = open(path, O_RDWR);

    if (fd < 0 || pread(fd, b, 8, 40) != 8) {
        FAIL("cannot read the header of %s", path);
    }
    l1_off = be64(b);
    if (pread(fd, b, 8, (off_t)l1_off) != 8) {
        FAIL("cannot read L1");
    }
    l2_off = be64(b) & 0x00fffffffffffe00ull;
    if (pread(fd, b, 8, (off_t)l2_off) != 8) {
        FAIL("cannot read L2");
    }
    data = be64(b) & 0x00fffffffffffe00ull;
    CHECK(l2_off && data);
    put_be64(b, (1ull << 63) | (data + 512));
    if (pwrite(fd, b, 8, (off_t)l2_off) != 8 ||
        pwrite(fd, b, 8, (off_t)l2_off + 8) != 8) {
        FAIL("cannot damage L2");
    }
    close(fd);
    return l2_off;
}

static struct vmc_image *
open_image(const char *path, unsigned flags)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2, .flags = flags };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;

    if (vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("open %s: %s", path, err.msg);
    }
    return img;
}

int
main(void)
{
    char path[] = "/tmp/vmc-last-error-XXXXXX";
    struct vmc_create_opts o;
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    uint8_t *buf = calloc(1, 2 * CS);
    char want[64];
    uint64_t l2_off;
    int fd = mkstemp(path);

    if (fd < 0 || !buf) {
        FAIL("setup");
    }
    close(fd);
    vmc_create_opts_init(&o);
    o.size = 4u << 20;
    o.cluster_size = CS;
    if (vmc_image_create(path, &o, &err) < 0) {
        FAIL("create: %s", err.msg);
    }
    img = open_image(path, VMC_OPEN_RDWR);
    memset(buf, 0xab, 2 * CS);
    CHECK_EQ(vmc_image_write(img, buf, 0, 2 * CS, 0), 0);
    CHECK_EQ(vmc_image_last_error(img, &err), 0);   /* nothing failed */
    CHECK_EQ(err.code, 0);
    CHECK(err.msg[0] == '\0');
    CHECK_EQ(vmc_image_close(img), 0);

    l2_off = damage_l2(path);

    /* A read of the damaged cluster names the reason and the offset of
     * the L2 entry (the first one found). */
    img = open_image(path, 0);
    CHECK_EQ(vmc_image_read(img, buf, 0, 4096), -EUCLEAN);
    CHECK_EQ(vmc_image_last_error(img, &err), -EUCLEAN);
    CHECK_EQ(err.code, -EUCLEAN);
    snprintf(want, sizeof(want), "offset 0x%" PRIx64 ")", l2_off);
    CHECK_MSG(strstr(err.msg, "invalid L2 entry") && strstr(err.msg, want),
              "last error '%s' lacks the reason or '%s'", err.msg, want);
    /* The second damaged entry does not replace the first reason. */
    CHECK_EQ(vmc_image_read(img, buf, CS, 4096), -EUCLEAN);
    vmc_image_last_error(img, &err);
    CHECK_MSG(strstr(err.msg, want), "first reason lost: '%s'", err.msg);
    CHECK_EQ(vmc_image_close(img), 0);

    /* A write into it is refused with the reason too, and so is every
     * later write, which still names the first reason. */
    img = open_image(path, VMC_OPEN_RDWR);
    CHECK_EQ(vmc_image_write(img, buf, 0, 4096, 0), -EUCLEAN);
    vmc_image_last_error(img, &err);
    CHECK_MSG(strstr(err.msg, "unaligned data cluster") &&
              strstr(err.msg, want), "write: last error '%s'", err.msg);
    CHECK_EQ(vmc_image_write(img, buf, 2 * CS, 4096, 0), -EUCLEAN);
    vmc_image_last_error(img, &err);
    CHECK_MSG(strstr(err.msg, "unaligned data cluster") &&
              strstr(err.msg, want), "refusal: last error '%s'", err.msg);
    vmc_image_close(img);

    unlink(path);
    free(buf);
    return harness_exit("last-error");
}
