/*
 * fuzz-qcow2-open.c - libFuzzer target: the input bytes are a qcow2 image.
 *
 * The input is written to a file in a private temporary directory and
 *  1. opened read-only without its backing chain: a few ranges are read,
 *     block status is walked (bounded), info is taken;
 *  2. opened for check (VMC_OPEN_CHECK) and checked without repair;
 *  3. opened once more allowing the backing chain, depth capped at 4
 *     (the directory holds a raw "b.raw" for seeds that name it).
 * Every call must return cleanly; sanitizers catch the rest.
 *
 * Build (see tests/fuzz/build-fuzzer.sh):
 *   clang-14 -fsanitize=fuzzer,address,undefined ... src/... this file
 * Replay a corpus without libFuzzer: tests/fuzz/standalone.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "fuzz-exercise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char img_path[300];
static uint8_t buf[65536];

static void
setup(void)
{
    char p[320];
    int fd;

    snprintf(dir, sizeof(dir), "%s/vmc-fuzz.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        abort();
    }
    snprintf(img_path, sizeof(img_path), "%s/img.qcow2", dir);
    /* a raw backing file seeds can point at */
    snprintf(p, sizeof(p), "%s/b.raw", dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
        abort();
    }
    memset(buf, 0x5a, 4096);
    if (pwrite(fd, buf, 4096, 8192) != 4096) {
        abort();
    }
    close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2 };
    struct vmc_image *img = NULL;
    struct vmc_error err;
    struct vmc_check_result res;
    int fd;

    if (!initialised) {
        setup();
        initialised = 1;
    }
    fd = open(img_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        abort();
    }
    if (size && write(fd, data, size) != (ssize_t)size) {
        abort();
    }
    close(fd);

    o.flags = VMC_OPEN_NO_BACKING | VMC_OPEN_FORCE_SHARE;
    if (vmc_image_open(&img, img_path, &o, &err) == 0) {
        fuzz_exercise(img, data, size);
        vmc_image_close(img);
    }

    img = NULL;
    o.flags = VMC_OPEN_NO_BACKING | VMC_OPEN_FORCE_SHARE | VMC_OPEN_CHECK;
    if (vmc_image_open(&img, img_path, &o, &err) == 0) {
        (void)vmc_image_check(img, VMC_REPAIR_NONE, &res, NULL, NULL, &err);
        vmc_image_close(img);
    }

    /* With the chain: device and proc files could block or be huge, so
     * inputs naming them are not opened with backing. */
    if (memmem(data, size, "/dev", 4) || memmem(data, size, "/proc", 5) ||
        memmem(data, size, "/sys", 4)) {
        return 0;
    }
    img = NULL;
    o.flags = VMC_OPEN_FORCE_SHARE;
    o.max_depth = 4;
    if (vmc_image_open(&img, img_path, &o, &err) == 0) {
        fuzz_exercise(img, data, size);
        vmc_image_close(img);
    }
    return 0;
}
