/*
 * test-eof-tables.c - tables past the end of the file and check's memory
 * budget (the chain fuzzer's seed corpus/chain/known-bug-refblock-offset).
 *
 * The seed makes L1 entry 0 of a 512-byte-cluster image read
 * 0x80000a000000ffff: COPIED, an L2 table ~10 TB into a 7 KiB file. A
 * write used to update that "table" in place, growing the file sparsely
 * to 10 TB, and a check then sized its arrays by the file (80 GB). Now:
 *   1. the seed's L1 entry: reads and writes fail, the image is marked
 *      corrupt with the reason, the file does not grow, check reports it;
 *   2. a refcount-table entry pointing past the end: the same on write;
 *   3. a COPIED L2 entry whose data cluster lies past the end: an
 *      in-place write is refused the same way;
 *   4. check of a file far larger than the memory budget of its
 *      reference counts refuses at once with a clear error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

#define CS 512u
#define FAR_AWAY 0x00000a000000fe00ull   /* the seed's L2 offset, ~10 TB */

static char path[] = "/tmp/vmc-eof-tables-XXXXXX";
static uint8_t buf[4096];

static uint64_t
get_be64(int fd, off_t off)
{
    uint8_t b[8];
    uint64_t v = 0;

    if (pread(fd, b, 8, off) != 8) {
        FAIL("pread at %lld", (long long)off);
    }
    for (int i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    return v;
}

static void
put_be64(int fd, off_t off, uint64_t v)
{
    uint8_t b[8];

    for (int i = 7; i >= 0; i--, v >>= 8) {
        b[i] = (uint8_t)v;
    }
    if (pwrite(fd, b, 8, off) != 8) {
        FAIL("pwrite at %lld", (long long)off);
    }
}

/* The fuzzer's layer: 1 MiB, 512-byte clusters, 4 KiB of data at 4 KiB.
 * Returns an fd on the file for damaging it. */
static int
fresh(void)
{
    struct vmc_create_opts o;
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR };
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    int fd;

    vmc_create_opts_init(&o);
    o.size = 1u << 20;
    o.cluster_size = CS;
    if (vmc_image_create(path, &o, &err) < 0 ||
        vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("create/open: %s", err.msg);
    }
    memset(buf, 0x11, sizeof(buf));
    CHECK_EQ(vmc_image_write(img, buf, 4096, 4096, 0), 0);
    CHECK_EQ(vmc_image_close(img), 0);
    fd = open(path, O_RDWR);
    if (fd < 0) {
        FAIL("open %s", path);
    }
    return fd;
}

static off_t
file_size(void)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        FAIL("stat %s", path);
    }
    return st.st_size;
}

/* Open read-write (must work), write 4 KiB at 1536 and flush: the
 * request must fail, the file must not grow and the image must be
 * marked corrupt with a reason naming @what. */
static void
write_is_refused(const char *what)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR };
    struct vmc_error err = { 0 }, last = { 0 };
    struct vmc_image_info info;
    struct vmc_image *img = NULL;
    off_t before = file_size();
    int w, f;

    if (vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("%s: open: %s", what, err.msg);
    }
    memset(buf, 0x77, sizeof(buf));
    w = vmc_image_write(img, buf, 1536, 4096, 0);
    f = vmc_image_flush(img);
    CHECK_MSG(w < 0 || f < 0, "%s: the write and flush succeeded", what);
    vmc_image_get_info(img, &info);
    CHECK_MSG(info.corrupt, "%s: not marked corrupt", what);
    vmc_image_last_error(img, &last);
    CHECK_MSG(strstr(last.msg, what) && strstr(last.msg, "past the end"),
              "%s: last error '%s'", what, last.msg);
    vmc_image_close(img);
    CHECK_MSG(file_size() <= before + 64 * 1024,
              "%s: the file grew from %lld to %lld bytes", what,
              (long long)before, (long long)file_size());
}

/* Check (read-only) completes quickly and reports a corruption. */
static void
check_reports(const char *what)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE |
                                         VMC_OPEN_CHECK };
    struct vmc_error err = { 0 };
    struct vmc_check_result res;
    struct vmc_image *img = NULL;

    if (vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("%s: open for check: %s", what, err.msg);
    }
    CHECK_MSG(vmc_image_check(img, VMC_REPAIR_NONE, &res, NULL, NULL,
                              &err) == 0, "%s: check: %s", what, err.msg);
    CHECK_MSG(res.corruptions > 0, "%s: check found no corruption", what);
    vmc_image_close(img);
}

static void
seed_l1_entry(void)
{
    int fd = fresh();
    uint64_t l1 = get_be64(fd, 40);
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2, .flags = 0 };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;

    put_be64(fd, (off_t)l1, 0x80000a000000ffffull);   /* the seed's bytes */
    close(fd);
    if (vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("seed: read-only open: %s", err.msg);
    }
    CHECK(vmc_image_read(img, buf, 4096, 4096) < 0);
    vmc_image_close(img);
    write_is_refused("L2 table");
    check_reports("seed");
}

static void
refblock_past_eof(void)
{
    int fd = fresh();
    uint64_t rt = get_be64(fd, 48);

    put_be64(fd, (off_t)rt, FAR_AWAY);
    close(fd);
    write_is_refused("refcount block");
    check_reports("refcount block");
}

static void
data_past_eof(void)
{
    int fd = fresh();
    uint64_t l2 = get_be64(fd, (off_t)get_be64(fd, 40)) & 0x00fffffffffffe00ull;

    /* Guest cluster 3 (bytes 1536..2047, the first one written) is
     * unallocated: make it COPIED data far past the end. */
    put_be64(fd, (off_t)(l2 + 3 * 8), (1ull << 63) | FAR_AWAY);
    close(fd);
    write_is_refused("data cluster");
}

static void
check_budget(void)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE |
                                         VMC_OPEN_CHECK };
    struct vmc_error err = { 0 };
    struct vmc_check_result res;
    struct vmc_image *img = NULL;
    struct timespec t0, t1;
    int fd = fresh(), r;

    /* 4 TiB of holes: 2^33 clusters of 512 bytes. */
    if (ftruncate(fd, (off_t)4 << 40) < 0) {
        close(fd);
        SKIP("cannot make a 4 TiB sparse file here");
    }
    close(fd);
    if (vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("budget: open for check: %s", err.msg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = vmc_image_check(img, VMC_REPAIR_NONE, &res, NULL, NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_MSG(r < 0, "check of a 4 TiB file of 512-byte clusters ran");
    CHECK_MSG(strstr(err.msg, "budget") != NULL, "check error: '%s'",
              err.msg);
    CHECK_MSG(t1.tv_sec - t0.tv_sec < 5, "check took %lld s",
              (long long)(t1.tv_sec - t0.tv_sec));
    vmc_image_close(img);
}

int
main(void)
{
    int fd = mkstemp(path);

    if (fd < 0) {
        FAIL("mkstemp");
    }
    close(fd);
    seed_l1_entry();
    refblock_past_eof();
    data_past_eof();
    check_budget();
    unlink(path);
    return harness_exit("eof-tables");
}
