/*
 * fuzz-vpc-open.c - libFuzzer target: the input bytes are a VHD image
 * (with FUZZ_FORMAT/FUZZ_SUFFIX defined first, the same body serves the
 * VDI and VHDX openers: fuzz-vdi-open.c, fuzz-vhdx-open.c).
 *
 * The input is written to a file in a private temporary directory and
 *  1. opened read-only without its backing chain: a few ranges are read,
 *     block status is walked (bounded), info is taken;
 *  2. opened once more with the backing chain, depth capped at 4 (a
 *     parent a seed names is missing: its open must fail cleanly);
 *  3. opened read-write, which a read-only driver must refuse cleanly.
 * Every call must return cleanly; sanitizers catch the rest.
 *
 * Build: tests/fuzz/build-fuzzer.sh OUT fuzz-vpc-open; replay a corpus
 * without libFuzzer: tests/fuzz/standalone.c.
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

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT VMC_FMT_VPC
#define FUZZ_SUFFIX "vhd"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char img_path[300];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "%s/vmc-fuzz-%s.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", FUZZ_SUFFIX);
    if (!mkdtemp(dir)) {
        abort();
    }
    snprintf(img_path, sizeof(img_path), "%s/img.%s", dir, FUZZ_SUFFIX);
}

/* Reads at fixed and input-derived spots, then a bounded status walk. */
static void
open_and_exercise(unsigned flags, const uint8_t *data, size_t size)
{
    struct vmc_open_opts o = { .format = FUZZ_FORMAT, .max_depth = 4 };
    struct vmc_image *img = NULL;
    struct vmc_error err;

    o.flags = flags;
    if (vmc_image_open(&img, img_path, &o, &err) == 0) {
        if (flags & VMC_OPEN_RDWR) {
            abort();   /* read-only drivers refuse a write open */
        }
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

    open_and_exercise(VMC_OPEN_NO_BACKING | VMC_OPEN_FORCE_SHARE, data, size);
    open_and_exercise(VMC_OPEN_FORCE_SHARE, data, size);
    open_and_exercise(VMC_OPEN_RDWR | VMC_OPEN_FORCE_SHARE, data, size);
    return 0;
}
