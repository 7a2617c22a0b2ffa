/*
 * test-fsync-fail.c - reliability test 9b: after a failed fdatasync the
 * image is in a failed state. That flush and every later flush, write,
 * write-zeroes and the close report an error (no retry-then-succeed),
 * and the reason says so; a reopen starts afresh, the data flushed before
 * the failure reads back and the qcow2 image checks clean.
 *
 * The sync failure is injected once through hio_set_fault_hook(): the
 * hook fails the next sync and then lets everything through, so any later
 * success would come from retrying.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "io/hostio.h"
#include "harness.h"

static int syncs_to_fail;

static int
fail_next_sync(enum hio_op op, const struct hio_file *f, uint64_t off,
               uint64_t len)
{
    (void)f;
    (void)off;
    (void)len;
    if (op == HIO_SYNC && syncs_to_fail > 0) {
        syncs_to_fail--;
        return -EIO;
    }
    return 0;
}

static struct vmc_image *
open_rw(const char *path, enum vmc_format fmt)
{
    struct vmc_open_opts oo = { .format = fmt, .flags = VMC_OPEN_RDWR };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;

    if (vmc_image_open(&img, path, &oo, &err) < 0) {
        FAIL("open %s: %s", path, err.msg);
    }
    return img;
}

static void
run(enum vmc_format fmt)
{
    char path[] = "/tmp/vmc-fsync-fail-XXXXXX";
    const char *name = vmc_format_name(fmt);
    struct vmc_create_opts co;
    struct vmc_error err = { 0 };
    static uint8_t a[65536], b[65536], got[65536];
    struct vmc_image *img;
    int fd = mkstemp(path);

    if (fd < 0) {
        FAIL("mkstemp");
    }
    close(fd);
    vmc_create_opts_init(&co);
    co.format = fmt;
    co.size = 4u << 20;
    if (vmc_image_create(path, &co, &err) < 0) {
        FAIL("create: %s", err.msg);
    }
    memset(a, 0xaa, sizeof(a));
    memset(b, 0xbb, sizeof(b));
    img = open_rw(path, fmt);
    CHECK_EQ(vmc_image_write(img, a, 0, sizeof(a), 0), 0);
    CHECK_EQ(vmc_image_flush(img), 0);              /* a is durable */

    hio_set_fault_hook(fail_next_sync);
    syncs_to_fail = 1;
    CHECK_EQ(vmc_image_write(img, b, 65536, sizeof(b), 0), 0);
    CHECK_MSG(vmc_image_flush(img) < 0, "%s: the failing flush succeeded",
              name);
    CHECK_EQ(syncs_to_fail, 0);
    /* The disk works again: nothing may succeed until a reopen. */
    CHECK_MSG(vmc_image_flush(img) == -EIO, "%s: a flush after the failed "
              "one did not fail", name);
    CHECK_MSG(vmc_image_write(img, b, 131072, 4096, 0) == -EIO,
              "%s: a write after the failed flush did not fail", name);
    CHECK_MSG(vmc_image_write(img, b, 0, 512, VMC_WRITE_FUA) == -EIO,
              "%s: a FUA write after the failed flush did not fail", name);
    CHECK_MSG(vmc_image_write_zeroes(img, 0, 65536, 0) == -EIO,
              "%s: write-zeroes after the failed flush did not fail", name);
    CHECK_MSG(vmc_image_last_error(img, &err) == -EIO &&
              strstr(err.msg, "earlier flush failed"),
              "%s: last error '%s'", name, err.msg);
    CHECK_MSG(vmc_image_read(img, got, 0, sizeof(got)) == 0 &&
              !memcmp(got, a, sizeof(a)), "%s: reads stopped working", name);
    CHECK_MSG(vmc_image_close(img) == -EIO, "%s: close reported success",
              name);
    hio_set_fault_hook(NULL);

    /* Reopened: what was flushed is there, and the image works again. */
    img = open_rw(path, fmt);
    CHECK_EQ(vmc_image_read(img, got, 0, sizeof(got)), 0);
    CHECK_MSG(!memcmp(got, a, sizeof(a)), "%s: flushed data lost", name);
    CHECK_EQ(vmc_image_write(img, b, 131072, 4096, 0), 0);
    CHECK_EQ(vmc_image_flush(img), 0);
    CHECK_EQ(vmc_image_close(img), 0);
    if (fmt == VMC_FMT_QCOW2) {
        struct vmc_open_opts oo = { .format = fmt,
                                    .flags = VMC_OPEN_CHECK |
                                             VMC_OPEN_NO_BACKING };
        struct vmc_check_result res;

        if (vmc_image_open(&img, path, &oo, &err) < 0) {
            FAIL("open for check: %s", err.msg);
        }
        CHECK_EQ(vmc_image_check(img, VMC_REPAIR_NONE, &res, NULL, NULL,
                                 &err), 0);
        CHECK_EQ(res.corruptions, 0);
        vmc_image_close(img);
    }
    unlink(path);
}

int
main(void)
{
    run(VMC_FMT_QCOW2);
    run(VMC_FMT_RAW);
    return harness_exit("fsync-fail");
}
