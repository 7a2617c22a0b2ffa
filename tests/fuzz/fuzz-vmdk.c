/*
 * fuzz-vmdk.c - libFuzzer target: the input bytes are a VMDK file (a
 * hosted sparse extent with its embedded descriptor, a stream-optimized
 * one, or a text descriptor).
 *
 * The input is written to a file in a private temporary directory that
 * also holds the files a descriptor may name: "e.vmdk" (a small sparse
 * extent), "f.raw" (a flat extent) and "base.vmdk" (a parent for a delta
 * disk's parentFileNameHint). It is
 *  1. opened as vmdk without its backing chain: a few ranges are read,
 *     block status is walked (bounded), info is taken;
 *  2. opened once more with the backing chain, depth capped at 4;
 *  3. probed (no format named), as a user's file would be.
 * Every call must return cleanly; sanitizers catch the rest.
 *
 * Build: tests/fuzz/build-fuzzer.sh OUT fuzz-vmdk. Replay a corpus
 * without libFuzzer: tests/fuzz/standalone.c (the meson 'fuzz' suite).
 * Seeds: tests/fuzz/make-vmdk-corpus.sh.
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

/* A hosted sparse extent of 1 MiB: 64 KiB grains, 512-entry tables, the
 * directory at sector 2, one grain table at sector 3, no grain. */
static void
write_sparse(const char *name)
{
    uint8_t h[4 * 512] = "KDMV";
    char p[320];
    int fd;

    h[4] = 1;                                /* version */
    h[13] = 0x08;                            /* capacity 2048 sectors */
    h[20] = 128;                             /* grain, sectors */
    h[44] = 0x00; h[45] = 0x02;              /* 512 entries per table */
    h[56] = 2;                               /* directory at sector 2 */
    h[64] = 4;                               /* overhead */
    h[1024] = 3;                             /* GD[0] = sector 3 */
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, h, sizeof(h)) != (ssize_t)sizeof(h)) {
        abort();
    }
    close(fd);
}

static void
setup(void)
{
    char p[320];
    int fd;

    snprintf(dir, sizeof(dir), "%s/vmc-fuzz-vmdk.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        abort();
    }
    snprintf(img_path, sizeof(img_path), "%s/img.vmdk", dir);
    write_sparse("e.vmdk");
    write_sparse("base.vmdk");
    snprintf(p, sizeof(p), "%s/f.raw", dir);
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

static void
open_and_exercise(enum vmc_format fmt, unsigned flags, const uint8_t *data,
                  size_t size)
{
    struct vmc_open_opts o = { .format = fmt, .flags = flags,
                               .max_depth = 4 };
    struct vmc_image *img = NULL;
    struct vmc_error err;

    if (vmc_image_open(&img, img_path, &o, &err) == 0) {
        fuzz_exercise(img, data, size);
        vmc_image_close(img);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
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

    open_and_exercise(VMC_FMT_VMDK, VMC_OPEN_NO_BACKING |
                      VMC_OPEN_FORCE_SHARE, data, size);
    /* Names outside the directory are refused by the driver and the
     * chain resolves parents next to the image; device and proc names
     * are still kept away from the chain (they could block). */
    if (memmem(data, size, "/dev", 4) || memmem(data, size, "/proc", 5) ||
        memmem(data, size, "/sys", 4)) {
        return 0;
    }
    open_and_exercise(VMC_FMT_VMDK, VMC_OPEN_FORCE_SHARE, data, size);
    open_and_exercise(VMC_FMT_AUTO, VMC_OPEN_NO_BACKING |
                      VMC_OPEN_FORCE_SHARE, data, size);
    return 0;
}
