/*
 * vmc-bench.c - the libvmclone counterpart of `qemu-img bench` (qd 1):
 * COUNT requests of SIZE bytes, starting at OFFSET and advancing by STEP,
 * wrapping at the end of the image, read (default) or write (-w).
 * The whole chain is opened once; the process time is what the bench
 * scripts measure, as they do for qemu-img bench.
 *
 * -W first reads the whole image once, untimed (e.g. so that a sealed
 * template's chunks are verified before the timed loop).
 *
 * usage: vmc-bench [-w] [-W] [-c COUNT] [-s SIZE] [-S STEP] [-o OFFSET]
 *                  [-P PATTERN] [-f FMT] IMAGE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmclone.h"

static uint64_t
size_arg(const char *s)
{
    uint64_t v;
    if (vmc_parse_size(s, &v) < 0) {
        fprintf(stderr, "vmc-bench: bad size '%s'\n", s);
        exit(2);
    }
    return v;
}

int
main(int argc, char **argv)
{
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2 };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    uint64_t count = 75000, size = 4096, step = 0, off = 0, isize;
    int pattern = 0, opt, r;
    bool write = false, warm = false;
    struct timespec t0, t1;
    uint8_t *buf;

    while ((opt = getopt(argc, argv, "wWc:s:S:o:P:f:")) != -1) {
        switch (opt) {
        case 'w': write = true; break;
        case 'W': warm = true; break;
        case 'c': count = strtoull(optarg, NULL, 0); break;
        case 's': size = size_arg(optarg); break;
        case 'S': step = size_arg(optarg); break;
        case 'o': off = size_arg(optarg); break;
        case 'P': pattern = (int)strtol(optarg, NULL, 0); break;
        case 'f': o.format = vmc_format_from_name(optarg); break;
        default:
            fprintf(stderr, "usage: vmc-bench [-w] [-c COUNT] [-s SIZE] "
                    "[-S STEP] [-o OFFSET] [-P PATTERN] [-f FMT] IMAGE\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "vmc-bench: one image expected\n");
        return 2;
    }
    if (!step) {
        step = size;
    }
    if (write) {
        o.flags |= VMC_OPEN_RDWR;
    }
    r = vmc_image_open(&img, argv[optind], &o, &err);
    if (r < 0) {
        fprintf(stderr, "vmc-bench: %s\n", err.msg);
        return 1;
    }
    isize = vmc_image_size(img);
    if (size > isize || !(buf = malloc(size))) {
        fprintf(stderr, "vmc-bench: request larger than the image\n");
        return 1;
    }
    if (warm) {
        uint8_t *big = malloc(1 << 20);
        for (uint64_t p = 0; big && p < isize; p += 1 << 20) {
            uint64_t n = isize - p < (1 << 20) ? isize - p : (1 << 20);
            if (vmc_image_read(img, big, p, n) < 0) {
                fprintf(stderr, "vmc-bench: warm-up read failed\n");
                return 1;
            }
        }
        free(big);
    }
    memset(buf, pattern, size);
    printf("Sending %llu %s requests, %llu bytes each, 1 in parallel "
           "(starting at offset %llu, step size %llu)\n",
           (unsigned long long)count, write ? "write" : "read",
           (unsigned long long)size, (unsigned long long)off,
           (unsigned long long)step);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < count; i++) {
        if (off + size > isize) {
            off = 0;
        }
        r = write ? vmc_image_write(img, buf, off, size, 0)
                  : vmc_image_read(img, buf, off, size);
        if (r < 0) {
            fprintf(stderr, "vmc-bench: %s at %llu failed: %s\n",
                    write ? "write" : "read", (unsigned long long)off,
                    strerror(-r));
            return 1;
        }
        off = (off + step) % isize;
    }
    r = vmc_image_close(img);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("Run completed in %.3f seconds.\n",
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    free(buf);
    return r < 0 ? 1 : 0;
}
